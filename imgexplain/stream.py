"""A stream of images at the model's speed, in this process: decoded ahead, explained in batches, written behind.

:func:`run_batched` decodes the next images on a thread pool while the model works, and hands an
explainer that has ``explain_batch`` a batch at a time (the batch size timed on the first batches, as
:class:`~imgexplain.backends.predictors.ChunkedPredictor` times its chunks). :class:`RowWriter` encodes the
pictures on a thread pool and appends the rows to the results table in parts of up to `ROWS_PER_PART` rows,
at least every `SECONDS_PER_PART` seconds: a run killed with SIGKILL loses the images in flight and the
rows not yet written, at most `ROWS_PER_PART` rows and none explained more than `SECONDS_PER_PART`
seconds (plus the time to encode its pictures) before. A row is appended only after its pictures are
written, so the table's "one row per image" holds after a resume.
"""
from __future__ import annotations

import os
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator

from imgexplain.results import atomic_write
from imgexplain.tasks import Result, Task, failed, run_here

BATCH_SIZES = (1, 2, 4, 8, 16)
RUNS_PER_BATCH_SIZE = 2
ROWS_PER_PART = 64
SECONDS_PER_PART = 5.0
THREADS = max(2, min(4, os.cpu_count() or 1))  # decoding and encoding threads (they release the GIL)


class BatchSizer:
    """The batch size: each of ``sizes`` timed ``runs`` times on the first batches, then the fastest per image.

    Examples
    --------
    >>> from imgexplain.stream import BatchSizer
    >>> sizer = BatchSizer(sizes=(1, 2), runs=1)
    >>> sizer.next_size()
    1
    >>> sizer.record(1, 0.030)
    >>> sizer.next_size()
    2
    >>> sizer.record(2, 0.050)  # 25 ms an image: faster than 30
    >>> sizer.next_size(), sizer.chosen
    (2, 2)
    """

    def __init__(self, sizes=BATCH_SIZES, runs: int = RUNS_PER_BATCH_SIZE):
        self.runs = runs
        self.seconds_per_image: dict[int, list[float]] = {size: [] for size in sizes}
        self.chosen: int | None = None

    def next_size(self) -> int:
        if self.chosen is not None:
            return self.chosen
        return next(size for size, times in self.seconds_per_image.items() if len(times) < self.runs)

    def record(self, size: int, seconds: float) -> None:
        if self.chosen is not None or size not in self.seconds_per_image:
            return
        self.seconds_per_image[size].append(seconds / size)
        timed = self.seconds_per_image
        if all(len(times) >= self.runs for times in timed.values()):
            self.chosen = min(timed, key=lambda size: min(timed[size]))


def run_batched(make_explainer: Callable, tasks: Iterable[Task], explain_kwargs: dict,
                batch_size: int | None = None, report_progress: Callable[[str], None] | None = None,
                sizer: BatchSizer | None = None) -> Iterator[Result]:
    """The results of ``tasks`` in this process, in input order; in batches when the explainer has
    ``load`` and ``explain_batch`` (and no ``explain_kwargs``), else one by one (:func:`run_here`).
    ``report_progress`` is given to an explainer with a ``report_progress`` attribute (progress inside
    an image: the anchor search's rounds). The batch size is ``batch_size``, else timed by ``sizer``
    (a Ray worker keeps one across its calls), else by a new :class:`BatchSizer`."""
    explainer = make_explainer()
    if report_progress is not None and hasattr(explainer, "report_progress"):
        explainer.report_progress = report_progress
    if explain_kwargs or not all(hasattr(explainer, name) for name in ("load", "explain_batch")):
        yield from run_here(lambda: explainer, tasks, explain_kwargs)
        return
    if batch_size:
        sizer = BatchSizer(sizes=(batch_size,), runs=1)
    sizer = sizer or BatchSizer()
    stream = iter(tasks)
    ahead: deque = deque()
    with ThreadPoolExecutor(THREADS, thread_name_prefix="imgexplain-decode") as pool:
        try:
            while True:
                size = sizer.next_size()
                while len(ahead) < size + THREADS:  # decode the next batch while this one runs
                    task = next(stream, None)
                    if task is None:
                        break
                    ahead.append((task, pool.submit(explainer.load, task.image)))
                if not ahead:
                    return
                yield from _explain_batch(explainer, [ahead.popleft() for _ in range(min(size, len(ahead)))], sizer)
        finally:
            for _, future in ahead:
                future.cancel()


def _explain_batch(explainer, batch, sizer: BatchSizer) -> Iterator[Result]:
    loaded = []
    for task, future in batch:
        try:
            loaded.append((task, future.result()))
        except Exception as error:
            yield failed(task, error)
    if not loaded:
        return
    tick = time.perf_counter()
    rows = explainer.explain_batch([pixels for _, pixels in loaded])
    seconds = time.perf_counter() - tick
    if len(loaded) == len(batch):
        sizer.record(len(loaded), seconds)
    for (task, _), row in zip(loaded, rows):
        if isinstance(row, Exception):
            yield failed(task, row, seconds / len(loaded))
        else:
            yield task.result(row, seconds / len(loaded))


class RowWriter:
    """Rows to the results table in parts of up to ``rows`` rows (default `ROWS_PER_PART`), at least every
    ``seconds`` seconds (`SECONDS_PER_PART`); each row's files (``{relative path: bytes or a callable giving
    them}``) written first, on a thread pool."""

    def __init__(self, table, folder, rows: int | None = None, seconds: float | None = None):
        self.table, self.folder = table, folder
        self.rows, self.seconds = rows or ROWS_PER_PART, seconds or SECONDS_PER_PART
        self.pool = ThreadPoolExecutor(THREADS, thread_name_prefix="imgexplain-encode")
        self.waiting: list = []  # (row, futures of its files)
        self.oldest: float | None = None
        self.lock = threading.Lock()
        self.error: Exception | None = None
        self.stopped = threading.Event()
        self.timer = threading.Thread(target=self._flush_late_rows, name="imgexplain-rows", daemon=True)
        self.timer.start()

    def add(self, row: dict, files: dict) -> None:
        futures = [self.pool.submit(_write_file, self.folder.path / path, data) for path, data in files.items()]
        with self.lock:
            if self.error is not None:
                raise self.error
            self.waiting.append((row, futures))
            self.oldest = self.oldest or time.monotonic()
            if len(self.waiting) >= self.rows:
                self._flush()

    def _flush_late_rows(self) -> None:
        while not self.stopped.wait(self.seconds / 4):
            with self.lock:
                if self.error is None and self.oldest is not None and time.monotonic() - self.oldest >= self.seconds:
                    try:
                        self._flush()
                    except Exception as error:  # a full disk: raised by the next add() or close()
                        self.error = error

    def _flush(self) -> None:
        for _, futures in self.waiting:
            for future in futures:
                future.result()
        self.table.append([row for row, _ in self.waiting])
        self.waiting, self.oldest = [], None

    def close(self, flush: bool = True) -> None:
        """Stop the timer; append the rows still waiting unless ``flush`` is False (the run failed)."""
        self.stopped.set()
        self.timer.join()
        try:
            if flush:
                with self.lock:
                    if self.error is not None:
                        raise self.error
                    self._flush()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=not flush)


def _write_file(target, data) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, data() if callable(data) else data)
