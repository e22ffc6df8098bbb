"""The checks of AnchorImage's arguments, made before any model call."""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from imgexplain._checks import check_finite, check_int, check_number, check_positive_int, is_int
from imgexplain.anchors.search import ROUNDS

# The values explain() takes as keywords beyond the reference's arguments, and their defaults.
EXPLAIN_EXTRAS = {"epsilon_stop": 0.05, "seed": None, "rounds": "adaptive", "deterministic": None}


def check_image_shape(image_shape: Any) -> tuple[int, ...]:
    try:
        shape = tuple(image_shape)
    except TypeError:
        shape = None
    if shape is None or not all(is_int(size) for size in shape):
        raise TypeError(f"image_shape must be a tuple of ints like (H, W, C); got {image_shape!r}")
    shape = tuple(int(size) for size in shape)
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise ValueError(f"image_shape must be (H, W) or (H, W, C) with positive sizes, channels last; "
                         f"got {image_shape!r}")
    return shape


def check_image(image: Any, image_shape: tuple[int, ...]) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array of shape {image_shape}; got {type(image).__name__}")
    if image.size == 0:
        raise ValueError(f"image is empty (shape {image.shape}); expected shape {image_shape}")
    if image.shape != image_shape:
        raise ValueError(f"image has shape {image.shape}; expected image_shape {image_shape} (channels last)")
    if image.dtype.kind not in "biuf":
        raise TypeError(f"image must hold numbers; got dtype {image.dtype}")
    if image.dtype.kind == "f":
        check_finite(image, "image")
    return image


def check_dtype(dtype: Any) -> np.dtype:
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be a numpy scalar type such as np.float32; got {dtype!r}") from None
    if dtype.kind not in "biuf":
        raise TypeError(f"dtype must be a numeric numpy type; got {dtype}")
    return dtype


def check_background(images_background: Any, image_shape: tuple[int, ...]) -> np.ndarray | None:
    if images_background is None:
        return None
    images_background = np.asarray(images_background)
    if images_background.ndim != len(image_shape) + 1 or images_background.shape[1:] != image_shape \
            or len(images_background) == 0:
        raise ValueError(f"images_background must have shape (B,) + image_shape = (B,) + {image_shape} with B >= 1; "
                         f"got {images_background.shape}")
    if images_background.dtype.kind not in "biuf":
        raise TypeError(f"images_background must hold numbers; got dtype {images_background.dtype}")
    if images_background.dtype.kind == "f":
        check_finite(images_background, "images_background")
    return images_background


def check_seed(seed: Any, name: str) -> int | None:
    return check_int(seed, name, 0, allow_none=True)


def explain_extras(kwargs: dict, default_seed: int | None) -> dict:
    """The keywords of explain() beyond the reference's (:data:`EXPLAIN_EXTRAS`), checked; ``seed`` defaults to
    the constructor's."""
    unknown = sorted(set(kwargs) - set(EXPLAIN_EXTRAS))
    if unknown:
        raise TypeError(f"explain() got unexpected keyword arguments {unknown}; "
                        "accepted extras are 'epsilon_stop', 'seed', 'rounds' and 'deterministic'")
    extras = {**EXPLAIN_EXTRAS, "seed": default_seed, **kwargs}
    extras["seed"] = check_seed(extras["seed"], "seed")
    if extras["rounds"] not in ROUNDS:
        raise ValueError(f"rounds must be one of {ROUNDS}; got {extras['rounds']!r}")
    deterministic = extras["deterministic"]
    if deterministic is not None and not isinstance(deterministic, (bool, np.bool_)):
        raise TypeError(f"deterministic must be None, True or False; got {deterministic!r}")
    return extras


def search_generator(seed: int | None) -> np.random.Generator:
    """The search's random generator: from ``seed``, or, for None, seeded by numpy's global random state as
    alibi's search is (``np.random.seed(0)`` before ``explain()`` reproduces it). The global state advances by
    one draw and is never reseeded."""
    if seed is None:
        return np.random.default_rng(np.random.randint(0, 2**32, size=4, dtype=np.uint64))
    return np.random.default_rng(seed)


_PROBABILITIES = ("p_sample", "threshold")
_OPEN_UNIT = ("delta", "tau", "epsilon_stop")
_POSITIVE_INTS = ("batch_size", "coverage_samples", "beam_size", "min_samples_start", "binary_cache_size",
                  "verbose_every")
_NON_NEGATIVE_INTS = ("n_covered_ex", "cache_margin")


def check_explain_arguments(params: dict) -> None:
    for name in _PROBABILITIES:
        check_number(params[name], name, 0, 1)
    for name in _OPEN_UNIT:
        check_number(params[name], name, 0, 1, inclusive=False)
    for name in _POSITIVE_INTS:
        check_positive_int(params[name], name)
    for name in _NON_NEGATIVE_INTS:
        check_int(params[name], name, 0)
    check_positive_int(params["max_anchor_size"], "max_anchor_size", allow_none=True)


def _physical_memory() -> int:
    """Bytes of memory of this machine (0 when the system does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0


def check_memory(params: dict, n_features: int, image_size: int) -> None:
    """ValueError, before anything is allocated, for a sample count whose arrays would not fit in memory.

    ``n_features``: superpixels of the image; ``image_size``: numbers in one image.
    """
    memory = _physical_memory()
    needs = {  # bytes of the largest array each argument sizes
        "coverage_samples": params["coverage_samples"] * n_features * 12,  # uniform draws, then float32 masks
        "batch_size": params["batch_size"] * image_size * 8,
        "binary_cache_size": (params["binary_cache_size"] + params["cache_margin"]) * n_features,
    }
    for name, size in needs.items():
        if memory and size > memory:
            raise ValueError(f"{name}={params[name]} needs {size / 2**30:,.1f} GiB for an image of {n_features} "
                             f"superpixels, more than this machine's {memory / 2**30:,.1f} GiB; use a smaller "
                             f"{name}")
