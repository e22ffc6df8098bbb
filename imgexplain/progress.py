"""Progress of long work, wherever it runs: a tqdm bar in a terminal, a refreshed line in Jupyter, log lines
otherwise.

In a terminal, tqdm's bar with its rate and ETA. In Jupyter, tqdm's widget when ipywidgets is
installed, else tqdm's text bar, which the notebook shows as one line refreshed in place. Anywhere else
(stderr sent to a file, a batch job's log), a line every `LOG_SECONDS` seconds:
``explaining: 120/1000 images (12 %), 3.2 images/s, ETA 4 min 35 s``, and one at the end.
"""
from __future__ import annotations

import sys
import time

LOG_SECONDS = 5.0


def _in_jupyter() -> bool:
    shell = sys.modules.get("IPython")
    ipython = getattr(shell, "get_ipython", lambda: None)() if shell is not None else None
    return ipython is not None and "IPKernelApp" in getattr(ipython, "config", {})


def progress_bar(total: int, description: str, unit: str = "image", enabled: bool = True, stream=None):
    """A progress display of ``total`` steps (a context manager with ``update(n=1)`` and ``set_postfix_str``).

    Parameters
    ----------
    total : int
        Steps expected.
    description : str
        What is done, shown first.
    unit : str
        What a step is.
    enabled : bool
        False: a display that shows nothing.
    stream : file, optional
        Where it is shown (default: sys.stderr).

    Returns
    -------
    tqdm.tqdm or LogProgress

    Examples
    --------
    >>> import io
    >>> from imgexplain.progress import progress_bar
    >>> log = io.StringIO()  # not a terminal: log lines
    >>> with progress_bar(3, "explaining", stream=log) as bar:
    ...     bar.update(3)
    >>> log.getvalue().startswith("explaining: 3/3 images (100 %)")
    True
    """
    from tqdm import tqdm

    stream = sys.stderr if stream is None else stream
    if not enabled:
        return tqdm(total=total, disable=True)
    if getattr(stream, "isatty", lambda: False)():
        return tqdm(total=total, desc=description, unit=unit, file=stream, dynamic_ncols=True)
    if _in_jupyter():
        try:
            from tqdm.notebook import tqdm as notebook_bar

            import ipywidgets  # noqa: F401  (tqdm.notebook needs it)
            return notebook_bar(total=total, desc=description, unit=unit)
        except ImportError:
            return tqdm(total=total, desc=description, unit=unit, file=stream, mininterval=1.0)
    return LogProgress(total, description, unit, stream)


class LogProgress:
    """Progress as log lines: done/total, rate and ETA every ``every`` seconds (`LOG_SECONDS`) of ``clock``
    (:func:`time.monotonic`), and at the end unless the last line said it already."""

    def __init__(self, total: int, description: str, unit: str, stream, every: float = LOG_SECONDS,
                 clock=time.monotonic):
        self.total, self.description, self.unit, self.stream, self.every = total, description, unit, stream, every
        self.clock, self.done, self.postfix = clock, 0, ""
        self.started = self.last = clock()
        self.shown = (0, "")  # the count and text of the last line

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def update(self, n: int = 1) -> None:
        self.done += n
        now = self.clock()
        if now - self.last >= self.every:
            self.last = now
            self._write(now)

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        """Show ``text`` after the count (progress inside a long step), in the next line."""
        self.postfix = text
        self.update(0)

    def close(self) -> None:
        if (self.done or self.postfix) and (self.done, self.postfix) != self.shown:
            self._write(self.clock())
        self.done, self.postfix = 0, ""

    def _write(self, now: float) -> None:
        rate = self.done / max(now - self.started, 1e-9)
        line = f"{self.description}: {self.done}/{self.total} {self.unit}s"
        if self.total:
            line += f" ({100 * self.done / self.total:.0f} %)"
        line += f", {rate:.2f} {self.unit}s/s"
        if 0 < self.done < self.total and rate > 0:
            line += f", ETA {_duration((self.total - self.done) / rate)}"
        if self.postfix:
            line += f", {self.postfix}"
        print(line, file=self.stream, flush=True)
        self.shown = (self.done, self.postfix)


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"
