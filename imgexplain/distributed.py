"""Run an explainer over a stream of tasks on Ray workers, one :class:`~imgexplain.tasks.Result` per task.

Each worker (a Ray actor) builds its own explainer once, with ``make_explainer()``, so the model is
loaded once per worker and never sent between processes. A worker holds one call of tasks at a time,
explained as :func:`imgexplain.stream.run_batched` explains them in this process (the CAMs of a batch in
one forward and backward pass, the batch size timed per worker) and sent back with their pictures
encoded; a call holds about `CALL_SECONDS` of work, at most `IMAGES_PER_CALL` images (an anchor's
image, seconds long, goes alone). New tasks are taken from the stream only when a worker is free:
memory stays flat however long the stream. Results are yielded as calls finish, in finishing order.

Faults become results, never lost ones: an exception in ``explain`` is that task's error (its type
and message, and the exception itself when it can be pickled); a worker that dies is replaced and the
tasks of its call retried once each, one at a time, then recorded as errors; with a ``timeout`` a
call holds one task, and one that runs past ``timeout`` seconds has its worker killed and replaced
and is recorded as a ``TimeoutError``. A worker that gets no CPU in time (its node died, the cluster is
full) is given up with a warning, and when no worker is left the tasks not yet explained become error
results: nothing waits forever.

Plain Ray actors rather than Ray Data: a per-task deadline, a retry that knows which task a dead
worker held, and results handed back the moment each task ends (so that the caller can append them
to the results table) are all direct with actors and the task loop here.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from imgexplain import ray_cluster
from imgexplain._checks import check_int, check_number
from imgexplain.ray_cluster import ClusterError
from imgexplain.tasks import Result, Task, failed

logger = logging.getLogger("imgexplain")

START_SECONDS = 120.0  # a worker that gets no CPU in this time is given up
IMAGES_PER_CALL = 16  # the most images a worker is given at once
CALL_SECONDS = 1.0  # about how much work a call holds, at the pace measured so far


class WorkerError(RuntimeError):
    """A task's error that could not be sent back as itself (it cannot be pickled)."""


def _encoded(result: Result) -> Result:
    """The result with its row's deferred files (pictures: callables) as bytes; an error drawing them is its error."""
    from imgexplain.explainers import encoded

    if isinstance(result.value, dict) and "files" in result.value:
        try:
            encoded(result.value)
        except Exception as error:
            return failed(Task(result.index, None, result.extra), error, result.seconds)
    return result


def _portable(result: Result) -> Result:
    """The result with its exception only if it survives pickling (the message and type always do)."""
    if result.exception is not None:
        from ray import cloudpickle

        try:
            cloudpickle.loads(cloudpickle.dumps(result.exception))
        except Exception:
            result.exception = None
    return result


class _Worker:
    """One explainer for the lifetime of a Ray actor, using ``threads`` CPU threads."""

    def __init__(self, make_explainer, threads: int):
        # Set before the explainer loads its model: PyTorch and ONNX Runtime size their thread pools from it,
        # so that N workers on N cores do not run N times as many threads as there are cores.
        os.environ["OMP_NUM_THREADS"] = str(threads)
        if "torch" in sys.modules:  # imported already: its pool is sized, resize it
            sys.modules["torch"].set_num_threads(threads)
        self.make_explainer = make_explainer
        self.explainer = self.sizer = None

    def started(self):
        """Returns at once: the worker got its CPUs and its process runs."""
        return True

    def ready(self):
        """Build the explainer; its error comes back as a value, so that it reaches the caller as itself."""
        from imgexplain.stream import BatchSizer

        try:
            self.explainer = self.make_explainer()
        except Exception as error:
            return _portable(failed(Task(-1, None), error))
        self.sizer = BatchSizer()
        return None

    def explain(self, tasks, explain_kwargs):
        """The results of ``tasks``, in batches as in this process (the batch size timed across calls)."""
        from imgexplain.stream import run_batched

        return [_portable(_encoded(result))
                for result in run_batched(lambda: self.explainer, tasks, explain_kwargs, sizer=self.sizer)]


@dataclass
class _Running:
    actor: Any
    tasks: list
    attempt: int
    started: float


@dataclass
class _Starting:
    actor: Any
    deadline: float | None  # to get CPUs and start (None once started: building the explainer has none)


class _Pool:
    """Ray actors, each with its explainer built; a dead or stopped one is replaced while the others work.

    A worker that gets no CPU within ``start_seconds`` (its node died, the cluster is full) is given up
    with a warning, and the run goes on with the others.
    """

    def __init__(self, make_explainer, cpus_per_worker: float, start_seconds: float):
        import ray

        self.actor_class = ray.remote(num_cpus=cpus_per_worker, max_restarts=0)(_Worker)
        self.make_explainer, self.threads = make_explainer, max(1, int(cpus_per_worker))
        self.start_seconds = start_seconds
        self.idle: list = []
        self.starting: dict = {}  # ref of started() or ready() -> _Starting

    def start(self, n_workers: int) -> None:
        """Start ``n_workers`` and wait until each has built its explainer (its error is raised here)."""
        for _ in range(n_workers):
            self._start()
        while self.starting:
            for failure in self.wait_starting(None):
                self.close()
                raise failure

    def _start(self):
        actor = self.actor_class.remote(self.make_explainer, self.threads)
        self.starting[actor.started.remote()] = _Starting(actor, time.monotonic() + self.start_seconds)

    def replace(self, actor) -> None:
        import ray

        ray.kill(actor, no_restart=True)
        self._start()

    def next_deadline(self) -> float | None:
        deadlines = [job.deadline for job in self.starting.values() if job.deadline is not None]
        return min(deadlines, default=None)

    def wait_starting(self, seconds: float | None) -> list[BaseException]:
        """Move started workers on, give up those past their deadline; the errors of workers that failed."""
        import ray

        if not self.starting:
            return []
        deadline = self.next_deadline()
        if deadline is not None:
            seconds = max(0.0, deadline - time.monotonic()) if seconds is None else \
                min(seconds, max(0.0, deadline - time.monotonic()))
        ray.wait(list(self.starting), num_returns=1, timeout=seconds)
        return self.collect_starting()

    def collect_starting(self) -> list[BaseException]:
        import ray

        failures = []
        done, _ = ray.wait(list(self.starting), num_returns=len(self.starting), timeout=0)
        for ref in done:
            job = self.starting.pop(ref)
            try:
                value = ray.get(ref)
            except ray.exceptions.RayError as error:
                failures.append(WorkerError(f"a Ray worker died while starting: {_first_line(error)}"))
                continue
            if value is True:  # started: now build the explainer
                self.starting[job.actor.ready.remote()] = _Starting(job.actor, None)
            elif value is None:
                self.idle.append(job.actor)
            else:
                error = value.exception or WorkerError(f"{value.error_type}: {value.error}")
                error.add_note("raised while building the explainer on a Ray worker")
                failures.append(error)
        now = time.monotonic()
        for ref, job in list(self.starting.items()):
            if job.deadline is not None and now >= job.deadline:
                del self.starting[ref]
                ray.kill(job.actor, no_restart=True)
                failures.append(ClusterError(f"a Ray worker got no CPU within {self.start_seconds:g} s "
                                             f"({_cpus()})"))
        return failures

    def close(self):
        import ray

        for actor in self.idle + [job.actor for job in self.starting.values()]:
            ray.kill(actor, no_restart=True)
        self.idle, self.starting = [], {}


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _cpus() -> str:
    import ray

    return (f"{ray.available_resources().get('CPU', 0.0):g} of {ray.cluster_resources().get('CPU', 0.0):g} "
            f"CPUs of the cluster free")


def run_on_ray(make_explainer: Callable, tasks: Iterable[Task], explain_kwargs: dict, *, n_workers: int,
               timeout: float | None = None, cpus_per_worker: float = 1, address: str | None = None,
               start_seconds: float = START_SECONDS) -> Iterator[Result]:
    """The results of ``tasks`` on ``n_workers`` Ray actors, as they finish.

    Ray joins ``address`` (or the ``RAY_ADDRESS`` cluster), or a private Ray is started on this machine
    and stopped at the end, unless Ray runs already in this process (:func:`imgexplain.ray_cluster.connect`).
    ``n_workers`` is capped at what the cluster's free CPUs hold. A worker that dies is replaced and the
    tasks it held retried once each; when no worker is left (and none can start within ``start_seconds``),
    the tasks left become error results.
    """
    with ray_cluster.connect(address):
        n_workers = ray_cluster.usable_workers(n_workers, cpus_per_worker)
        pool = _Pool(make_explainer, cpus_per_worker, start_seconds)
        try:
            pool.start(n_workers)
            yield from _Loop(pool, tasks, explain_kwargs, timeout).results()
        finally:
            pool.close()


class _Loop:
    """Calls of tasks to free workers, results back as they finish, deadlines and dead workers handled."""

    def __init__(self, pool: _Pool, tasks: Iterable[Task], explain_kwargs: dict, timeout: float | None):
        import ray

        self.pool, self.stream, self.timeout = pool, iter(tasks), timeout
        self.kwargs_ref = ray.put(explain_kwargs)
        self.pending: deque = deque()  # tasks to retry, one call each
        self.running: dict = {}
        self.exhausted = False
        self.seconds_per_image: float | None = None  # the pace of the last call, once one finished

    def _call_size(self) -> int:
        """Images in the next call: one with a deadline per image or before any pace is known, else about
        `CALL_SECONDS` of work, at most `IMAGES_PER_CALL`."""
        if self.timeout is not None or self.seconds_per_image is None:
            return 1
        return max(1, min(IMAGES_PER_CALL, int(CALL_SECONDS / max(self.seconds_per_image, 1e-6))))

    def _next(self):
        """The next call's tasks and their attempt, or None when none is left."""
        if self.pending:
            return [self.pending.popleft()], 1
        calls = []
        while not self.exhausted and len(calls) < self._call_size():
            task = next(self.stream, None)
            self.exhausted = task is None
            if task is not None:
                calls.append(task)
        return (calls, 0) if calls else None

    def _dispatch(self) -> None:
        while self.pool.idle and (self.pending or not self.exhausted):
            job = self._next()
            if job is None:
                return
            actor = self.pool.idle.pop()
            ref = actor.explain.remote(job[0], self.kwargs_ref)
            self.running[ref] = _Running(actor, job[0], job[1], time.monotonic())

    def results(self) -> Iterator[Result]:
        import ray

        try:
            while True:
                self._dispatch()
                if not self.running:
                    if not self.pending and self.exhausted:
                        return
                    if self.pool.starting:
                        self._note_lost(self.pool.wait_starting(None))
                        continue
                    yield from self._orphans()
                    return
                ray.wait(list(self.running) + list(self.pool.starting), num_returns=1, timeout=self._wait())
                yield from self._finished()
                self._note_lost(self.pool.collect_starting())
                yield from self._late()
        finally:
            for job in self.running.values():
                ray.kill(job.actor, no_restart=True)

    def _wait(self) -> float | None:
        deadlines = [job.started + self.timeout for job in self.running.values()] if self.timeout else []
        if self.pool.next_deadline() is not None:
            deadlines.append(self.pool.next_deadline())
        return None if not deadlines else max(0.0, min(deadlines) - time.monotonic())

    def _note_lost(self, failures) -> None:
        for failure in failures:
            logger.warning("imgexplain: %s; going on with the other workers", _first_line(failure))

    def _orphans(self) -> Iterator[Result]:
        """With no worker left: every task not yet explained, as an error result (the next run retries it)."""
        while self.pending or not self.exhausted:
            job = self._next()
            for task in job[0] if job is not None else ():
                yield task.failure("WorkerDiedError", f"no Ray worker was left to explain this image ({_cpus()})")

    def _finished(self) -> Iterator[Result]:
        import ray

        done, _ = ray.wait(list(self.running), num_returns=len(self.running), timeout=0)
        for ref in done:
            job = self.running.pop(ref)
            try:
                results = ray.get(ref)
            except ray.exceptions.RayActorError as error:
                self.pool.replace(job.actor)
                if job.attempt == 0:
                    self.pending.extend(job.tasks)
                else:
                    yield from (task.failure("WorkerDiedError", "the worker died twice while explaining this "
                                                                f"image ({_first_line(error)})") for task in job.tasks)
                continue
            except ray.exceptions.RayError as error:  # the results could not be sent back
                self.pool.replace(job.actor)
                yield from (task.failure(type(error).__name__, _first_line(error)) for task in job.tasks)
                continue
            self.pool.idle.append(job.actor)
            self.seconds_per_image = (time.monotonic() - job.started) / len(job.tasks)
            yield from results

    def _late(self) -> Iterator[Result]:
        import ray

        if self.timeout is None:
            return
        now = time.monotonic()
        for ref, job in list(self.running.items()):
            # A task that finished while a worker was being replaced is not late: it is collected next turn.
            if now - job.started >= self.timeout and not ray.wait([ref], timeout=0)[0]:
                del self.running[ref]
                self.pool.replace(job.actor)
                yield from (task.failure("TimeoutError", f"no result after {self.timeout:g} s (--timeout); the "
                                                         "worker was stopped", now - job.started)
                            for task in job.tasks)


def check_workers(n_workers, timeout) -> None:
    """TypeError or ValueError for a number of workers or a timeout that cannot be used."""
    check_int(n_workers, "n_workers", 0, allow_none=True)
    if check_number(timeout, "timeout (seconds)", 0, inclusive=False, allow_none=True) is not None:
        if n_workers == 0:
            raise ValueError("timeout needs Ray workers (n_workers >= 1): a model call running in this "
                             "process cannot be interrupted, a worker can be stopped and replaced; n_workers=1 "
                             "explains one image at a time with the same results")


def default_workers(cpus_per_worker: float) -> int:
    """As many workers as there are CPUs for: the free CPUs of the Ray cluster this process has joined, else
    this machine's CPUs (Ray is not started here: :func:`run_on_ray` caps the number at the cluster's free CPUs)."""
    import ray

    if not ray.is_initialized():
        return max(1, int((os.cpu_count() or 1) // cpus_per_worker))
    return max(1, int(ray.available_resources().get("CPU", 1.0) // cpus_per_worker))

