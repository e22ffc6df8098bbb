"""``verbose=True`` as logging: progress messages go to a logger, and reach the terminal even when the
program configured no logging."""
from __future__ import annotations

import contextlib
import logging
from typing import Callable, Iterator


@contextlib.contextmanager
def verbose_log(logger: logging.Logger, verbose: bool) -> Iterator[Callable[..., None] | None]:
    """``logger.info`` while the block runs if ``verbose``, else None (nothing is logged).

    For the block, ``logger`` lets INFO records through, and when no handler would receive them
    (the program configured no logging) one that writes the bare message to stderr is attached.
    Both are undone afterwards. A program that configured logging gets the records through its own
    handlers and formats.

    Examples
    --------
    >>> import logging
    >>> from imgexplain._logging import verbose_log
    >>> logger = logging.getLogger("imgexplain.example")
    >>> with verbose_log(logger, verbose=True) as log:
    ...     log("step 1")  # written to stderr
    >>> with verbose_log(logger, verbose=False) as log:
    ...     log is None
    True
    """
    if not verbose:
        yield None
        return
    level = logger.level
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    handler = None
    if not logger.hasHandlers():
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    try:
        yield logger.info
    finally:
        logger.setLevel(level)
        if handler is not None:
            logger.removeHandler(handler)
