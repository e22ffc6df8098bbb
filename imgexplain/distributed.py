"""Explain many images at once, one image per worker, on the cores of one machine or a Ray cluster.

Each worker builds its own explainer (and so loads its own model) once, with ``make_explainer()``, then
explains the images it is given. Explanations come back in the order of the images. An explainer that
is reproducible per image, as :class:`~imgexplain.AnchorImage` with a ``seed`` is, gives the same
explanations whatever the number of workers.

Ray is imported only when ``n_workers`` is not 0.
"""
from __future__ import annotations

import sys
from numbers import Integral
from typing import Callable, Sequence

import numpy as np

__all__ = ["explain_many"]


def explain_many(make_explainer: Callable, images: Sequence[np.ndarray] | np.ndarray, *, n_workers: int | None = None,
                 cpus_per_worker: float = 1, progress: bool = True, **explain_kwargs) -> list:
    """Explain every image with ``make_explainer().explain(image, **explain_kwargs)``, in parallel.

    Parameters
    ----------
    make_explainer : callable
        Takes no argument and returns an object with an ``explain(image, **kwargs)`` method, for example
        ``functools.partial(AnchorImage, predictor, image_shape, seed=0)``. It is called once in each worker,
        so the model is loaded once per worker and never sent between processes. Ray pickles it with
        cloudpickle: functions, partials and lambdas of a script travel by value, those of your own modules
        by name, so those modules must be importable on the workers (an installed package, or
        ``ray.init(runtime_env={"working_dir": ...})``).
    images : sequence of arrays, or one (N, ...) array
        The images, each as the explainer's ``explain`` takes it.
    n_workers : int, optional
        Number of Ray workers (actors). None: as many as Ray has CPUs for, at ``cpus_per_worker`` each,
        and no more than there are images. 0: explain in this process, one image after the other, without Ray.
    cpus_per_worker : float
        CPUs Ray reserves for each worker; Ray also limits each worker's math library threads to it.
    progress : bool
        Show a tqdm progress bar on standard error (only when it is a terminal).
    **explain_kwargs
        Passed to every ``explain`` call.

    Returns
    -------
    list
        The explanations, in the order of ``images``.

    Notes
    -----
    Ray is started on this machine if it is not running yet, and stopped at the end. To keep it running
    between calls, or to use a cluster, call ``ray.init(...)`` first.
    """
    if not callable(make_explainer):
        raise TypeError(f"make_explainer must be a callable that returns an explainer; "
                        f"got {type(make_explainer).__name__}")
    images = _check_images(images)
    if n_workers is not None and (isinstance(n_workers, bool) or not isinstance(n_workers, Integral)
                                  or n_workers < 0):
        raise ValueError(f"n_workers must be None or an int >= 0; got {n_workers!r}")
    if isinstance(cpus_per_worker, bool) or not isinstance(cpus_per_worker, (int, float)) or not cpus_per_worker > 0:
        raise ValueError(f"cpus_per_worker must be a positive number; got {cpus_per_worker!r}")
    if n_workers == 0:
        return _explain_here(make_explainer, images, progress, explain_kwargs)
    return _explain_with_ray(make_explainer, images, n_workers, float(cpus_per_worker), progress, explain_kwargs)


def _check_images(images) -> list[np.ndarray]:
    if isinstance(images, np.ndarray):
        if images.ndim < 3:
            raise ValueError(f"images must be a sequence of images or an (N, H, W[, C]) array; "
                             f"got an array of shape {images.shape}")
        images = list(images)
    elif isinstance(images, (str, bytes)) or not isinstance(images, Sequence):
        raise TypeError(f"images must be a sequence of images or an (N, H, W[, C]) array; "
                        f"got {type(images).__name__}")
    if len(images) == 0:
        raise ValueError("images is empty: there is nothing to explain")
    return [np.asarray(image) for image in images]


def _progress_bar(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc="explaining", unit="image", file=sys.stderr, disable=None if enabled else True)


def _explain_here(make_explainer, images, progress, explain_kwargs) -> list:
    explainer = make_explainer()
    explanations = []
    with _progress_bar(len(images), progress) as bar:
        for image in images:
            explanations.append(explainer.explain(image, **explain_kwargs))
            bar.update()
    return explanations


class _Worker:
    """Holds one explainer for the lifetime of a Ray actor.

    The explainer is built by the first task rather than by the constructor, so that an error in
    ``make_explainer`` reaches the caller as itself, not as a dead actor.
    """

    def __init__(self, make_explainer):
        self.make_explainer = make_explainer
        self.explainer = None

    def explain(self, index, image, explain_kwargs):
        if self.explainer is None:
            self.explainer = self.make_explainer()
        return index, self.explainer.explain(image, **explain_kwargs)


def _explain_with_ray(make_explainer, images, n_workers, cpus_per_worker, progress, explain_kwargs) -> list:
    import ray
    from ray.util import ActorPool

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(include_dashboard=False, logging_level="ERROR", configure_logging=True)
    try:
        if n_workers is None:
            available = ray.available_resources().get("CPU", 1.0)
            n_workers = max(1, int(available // cpus_per_worker))
        n_workers = min(n_workers, len(images))
        worker_class = ray.remote(num_cpus=cpus_per_worker)(_Worker)
        pool = ActorPool([worker_class.remote(make_explainer) for _ in range(n_workers)])
        kwargs_ref = ray.put(explain_kwargs)
        explanations = [None] * len(images)
        tasks = ((index, image) for index, image in enumerate(images))
        with _progress_bar(len(images), progress) as bar:
            for index, explanation in pool.map_unordered(
                    lambda actor, task: actor.explain.remote(task[0], task[1], kwargs_ref), tasks):
                explanations[index] = explanation
                bar.update()
        return explanations
    finally:
        if started_here:
            ray.shutdown()
