"""Run an explainer over a stream of tasks, in this process or on Ray workers, one outcome per task.

Each worker (a Ray actor) builds its own explainer once, with ``make_explainer()``, so the model is
loaded once per worker and never sent between processes. A worker holds one task at a time, and a new
task is taken from the stream only when a worker is free: memory stays flat however long the stream.
Outcomes are yielded as tasks finish, in finishing order.

Faults become outcomes, never lost results: an exception in ``explain`` is that task's error (its type
and message, and the exception itself when it can be pickled); a worker that dies is replaced and its
task retried once on the new worker, then recorded as an error; a task that runs past ``timeout``
seconds has its worker killed and replaced and is recorded as a ``TimeoutError``.

Plain Ray actors rather than Ray Data: a per-task deadline, a retry that knows which task a dead
worker held, and results handed back the moment each task ends (so that the caller can append them
to the results table) are all direct with actors and the task loop here.
"""
from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

from imgexplain._checks import check_int, check_number


@dataclass
class Task:
    index: int
    image: Any  # what the explainer's explain() takes
    extra: dict = field(default_factory=dict)  # carried to the outcome untouched


@dataclass
class Outcome:
    task: Task
    value: Any = None
    error_type: str | None = None
    error: str | None = None
    exception: BaseException | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error_type is None


class WorkerError(RuntimeError):
    """A task's error that could not be sent back as itself (it cannot be pickled)."""


def _failed(task: Task, error: BaseException, seconds: float = 0.0) -> Outcome:
    return Outcome(task, error_type=type(error).__name__, error=str(error), exception=error, seconds=seconds)


def _explain(explainer, task: Task, explain_kwargs: dict) -> Outcome:
    tick = time.perf_counter()
    try:
        value = explainer.explain(task.image, **explain_kwargs)
    except Exception as error:
        return _failed(task, error, time.perf_counter() - tick)
    return Outcome(task, value=value, seconds=time.perf_counter() - tick)


def run_here(make_explainer: Callable, tasks: Iterable[Task], explain_kwargs: dict) -> Iterator[Outcome]:
    """The outcomes of ``tasks``, one after the other in this process."""
    explainer = make_explainer()
    for task in tasks:
        yield _explain(explainer, task, explain_kwargs)


def _portable(outcome: Outcome) -> Outcome:
    """The outcome with its exception only if it survives pickling (the message and type always do)."""
    if outcome.exception is not None:
        from ray import cloudpickle

        try:
            cloudpickle.loads(cloudpickle.dumps(outcome.exception))
        except Exception:
            outcome.exception = None
    return outcome


class _Worker:
    """One explainer for the lifetime of a Ray actor."""

    def __init__(self, make_explainer):
        self.make_explainer = make_explainer
        self.explainer = None

    def ready(self):
        """Build the explainer; its error comes back as a value, so that it reaches the caller as itself."""
        try:
            self.explainer = self.make_explainer()
        except Exception as error:
            return _portable(_failed(Task(-1, None), error))
        return None

    def explain(self, task, explain_kwargs):
        return _portable(_explain(self.explainer, task, explain_kwargs))


@dataclass
class _Running:
    actor: Any
    task: Task
    attempt: int
    started: float


class _Pool:
    """Ray actors, each with its explainer built, replaced when one dies or is killed."""

    def __init__(self, make_explainer, n_workers: int, cpus_per_worker: float):
        import ray

        self.actor_class = ray.remote(num_cpus=cpus_per_worker, max_restarts=0)(_Worker)
        self.make_explainer = make_explainer
        self.idle = [self._start() for _ in range(n_workers)]
        self._wait_ready(self.idle)

    def _start(self):
        return self.actor_class.remote(self.make_explainer)

    def _wait_ready(self, actors):
        import ray

        for failure in ray.get([actor.ready.remote() for actor in actors]):
            if failure is not None:
                self.close()
                error = failure.exception or WorkerError(f"{failure.error_type}: {failure.error}")
                error.add_note("raised while building the explainer on a Ray worker")
                raise error

    def replace(self, actor):
        import ray

        ray.kill(actor, no_restart=True)
        fresh = self._start()
        self._wait_ready([fresh])
        self.idle.append(fresh)

    def close(self):
        import ray

        for actor in self.idle:
            ray.kill(actor, no_restart=True)
        self.idle = []


def run_on_ray(make_explainer: Callable, tasks: Iterable[Task], explain_kwargs: dict, *, n_workers: int,
               timeout: float | None = None, cpus_per_worker: float = 1, address: str | None = None
               ) -> Iterator[Outcome]:
    """The outcomes of ``tasks`` on ``n_workers`` Ray actors, as they finish.

    Ray is started on this machine (or joins ``address``, or the ``RAY_ADDRESS`` cluster) unless it
    runs already, and is stopped at the end if it was started here.
    """
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, logging_level="ERROR", configure_logging=True,
                 log_to_driver=False)
    pool = None
    running: dict = {}
    try:
        pool = _Pool(make_explainer, n_workers, cpus_per_worker)
        kwargs_ref = ray.put(explain_kwargs)
        pending, stream = deque(), iter(tasks)
        exhausted = False
        while True:
            while pool.idle and (pending or not exhausted):
                if pending:
                    task, attempt = pending.popleft()
                else:
                    task, attempt = next(stream, None), 0
                    if task is None:
                        exhausted = True
                        break
                actor = pool.idle.pop()
                running[actor.explain.remote(task, kwargs_ref)] = _Running(actor, task, attempt, time.monotonic())
            if not running:
                return
            wait = None
            if timeout is not None:
                wait = max(0.0, min(job.started for job in running.values()) + timeout - time.monotonic())
            ray.wait(list(running), num_returns=1, timeout=wait)
            done, _ = ray.wait(list(running), num_returns=len(running), timeout=0)
            for ref in done:
                job = running.pop(ref)
                try:
                    outcome = ray.get(ref)
                except ray.exceptions.RayActorError as error:
                    pool.replace(job.actor)
                    if job.attempt == 0:
                        pending.append((job.task, 1))
                    else:
                        yield Outcome(job.task, error_type="WorkerDiedError",
                                      error=f"the worker died twice while explaining this image ({error})")
                    continue
                except ray.exceptions.RayError as error:  # the outcome could not be sent back
                    pool.replace(job.actor)
                    yield Outcome(job.task, error_type=type(error).__name__, error=str(error).splitlines()[0])
                    continue
                pool.idle.append(job.actor)
                yield outcome
            now = time.monotonic()
            for ref, job in list(running.items()):
                # A task that finished while a worker was being replaced is not late: it is collected next turn.
                if timeout is not None and now - job.started >= timeout and not ray.wait([ref], timeout=0)[0]:
                    del running[ref]
                    pool.replace(job.actor)
                    yield Outcome(job.task, error_type="TimeoutError", seconds=now - job.started,
                                  error=f"no result after {timeout:g} s (--timeout); the worker was stopped")
    finally:
        for job in running.values():
            ray.kill(job.actor, no_restart=True)
        if pool is not None:
            pool.close()
        if started_here:
            ray.shutdown()


def check_workers(n_workers, timeout) -> None:
    """TypeError or ValueError for a number of workers or a timeout that cannot be used."""
    check_int(n_workers, "n_workers", 0, allow_none=True)
    if check_number(timeout, "timeout (seconds)", 0, inclusive=False, allow_none=True) is not None:
        if n_workers == 0:
            raise ValueError("timeout needs Ray workers (n_workers >= 1): a model call running in this "
                             "process cannot be interrupted, a worker can be stopped and replaced; n_workers=1 "
                             "explains one image at a time with the same results")


def default_workers(cpus_per_worker: float) -> int:
    """As many workers as the Ray cluster (started if need be) has CPUs for."""
    import ray

    if not ray.is_initialized():
        return max(1, int((os.cpu_count() or 1) // cpus_per_worker))
    return max(1, int(ray.available_resources().get("CPU", 1.0) // cpus_per_worker))

