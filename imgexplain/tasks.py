"""What a run explains and what comes back: a :class:`Task` per image, a :class:`Result` per task.

The same two types in this process (:func:`run_here`, :func:`imgexplain.stream.run_batched`) and on Ray
workers (:func:`imgexplain.distributed.run_on_ray`), and the :class:`Result` is what
:func:`imgexplain.explain_dataset` yields.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator


@dataclass
class Task:
    """An image to explain: its position in the input, what the explainer takes, and the columns its row
    carries untouched (``'image'``, its name, among them)."""

    index: int
    image: Any  # what the explainer's explain() takes
    extra: dict = field(default_factory=dict)

    def result(self, value: Any = None, seconds: float = 0.0) -> Result:
        """This task's result: explained as ``value``."""
        return Result(self.index, self.extra.get("image", f"image {self.index}"), "ok", value, seconds=seconds,
                      extra=self.extra)

    def failure(self, error_type: str, error: str, seconds: float = 0.0,
                exception: BaseException | None = None) -> Result:
        """This task's result: failed with ``error_type`` and the message ``error``."""
        return Result(self.index, self.extra.get("image", f"image {self.index}"), "error", None, error_type,
                      error, seconds, exception, self.extra)


@dataclass
class Result:
    """One image's result: ``value`` is what the explainer returned (None on error).

    Attributes
    ----------
    index : int
        The image's position in the input.
    image : str
        Its name: the file's path, the name given with it, or ``'image INDEX'``.
    status : {"ok", "error"}
    value : object
        What ``explain`` returned (None on error).
    error_type, error : str or None
        The exception's type and message, on error.
    seconds : float
        How long ``explain`` took.
    exception : BaseException or None
        The exception itself, when it could be brought back from the worker.
    extra : dict
        The task's columns, carried to the image's row.

    Examples
    --------
    >>> from imgexplain.tasks import Task
    >>> result = Task(3, "cat.jpg", {"image": "cat.jpg"}).failure("OSError", "truncated file")
    >>> result.image, result.status, result.ok, result.error
    ('cat.jpg', 'error', False, 'truncated file')
    """

    index: int
    image: str
    status: str  # 'ok' or 'error'
    value: Any = None
    error_type: str | None = None
    error: str | None = None
    seconds: float = 0.0
    exception: BaseException | None = None
    extra: dict = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def failed(task: Task, error: BaseException, seconds: float = 0.0) -> Result:
    """``task``'s result: it raised ``error``."""
    return task.failure(type(error).__name__, str(error), seconds, error)


def explain_task(explainer, task: Task, explain_kwargs: dict) -> Result:
    """``explainer.explain(task.image, **explain_kwargs)`` as ``task``'s result, timed; an exception is its error."""
    tick = time.perf_counter()
    try:
        value = explainer.explain(task.image, **explain_kwargs)
    except Exception as error:
        return failed(task, error, time.perf_counter() - tick)
    return task.result(value, time.perf_counter() - tick)


def run_here(make_explainer: Callable, tasks: Iterable[Task], explain_kwargs: dict) -> Iterator[Result]:
    """The results of ``tasks``, one after the other in this process."""
    explainer = make_explainer()
    for task in tasks:
        yield explain_task(explainer, task, explain_kwargs)
