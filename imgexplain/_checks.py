"""Checks of arguments shared by imgexplain, in one vocabulary: TypeError for a value of the wrong
type, ValueError for a wrong value. (A user's model that fails or answers wrongly is an
:class:`imgexplain.predictor.PredictorError`, raised by :mod:`imgexplain.predictor`.)"""
from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np

# Class indices travel as int32 through TensorFlow; larger ones would wrap around.
INT32_LIMIT = 2**31


def is_int(value: Any) -> bool:
    """True for Python and numpy integers; False for bools (``True`` is not the number 1 here)."""
    return isinstance(value, Integral) and not isinstance(value, (bool, np.bool_))


def is_number(value: Any) -> bool:
    """True for Python and numpy real numbers; False for bools."""
    return isinstance(value, Real) and not isinstance(value, (bool, np.bool_))


def _bounds(low: Any, high: Any, between: str) -> str:
    """How the message states the range: " between 1 and 9", " >= 0", or nothing."""
    if low is not None and high is not None:
        return between.format(low=low, high=high)
    if low is not None:
        return f" >= {low}"
    return "" if high is None else f" <= {high}"


def check_int(value: Any, name: str, low: int | None = None, high: int | None = None,
              allow_none: bool = False) -> int | None:
    """``value`` as an int in ``[low, high]`` (None when ``allow_none`` and it is None)."""
    if value is None and allow_none:
        return None
    optional = "None or " if allow_none else ""
    if low == 1 and high is None:
        expected = f"{name} must be {optional}a positive integer"
    else:
        expected = f"{name} must be {optional}an integer{_bounds(low, high, ' between {low} and {high}')}"
    if not is_int(value):
        raise TypeError(f"{expected}; got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{expected}; got {value!r}")
    return int(value)


def check_positive_int(value: Any, name: str, allow_none: bool = False) -> int | None:
    """``value`` as an int >= 1 (None when ``allow_none`` and it is None)."""
    return check_int(value, name, low=1, allow_none=allow_none)


def check_size(value: Any, name: str, allow_none: bool = False) -> tuple[int, int] | None:
    """``value`` as a ``(height, width)`` pair of positive ints (None when ``allow_none`` and it is None)."""
    if value is None and allow_none:
        return None
    expected = f"{name} must be {'None or ' if allow_none else ''}a (height, width) pair of positive integers"
    if not isinstance(value, (tuple, list)) or not all(is_int(size) for size in value):
        raise TypeError(f"{expected}; got {value!r}")
    if len(value) != 2 or min(value) < 1:
        raise ValueError(f"{expected}; got {value!r}")
    return int(value[0]), int(value[1])


def check_number(value: Any, name: str, low: float | None = None, high: float | None = None,
                 inclusive: bool = True, allow_none: bool = False) -> float | None:
    """``value`` as a float in ``[low, high]`` (``(low, high)`` unless ``inclusive``; None when ``allow_none``
    and it is None); NaN is never in range."""
    if value is None and allow_none:
        return None
    optional = "None or " if allow_none else ""
    if low == 0 and high is None and not inclusive:
        expected = f"{name} must be {optional}a positive number"
    elif inclusive:
        expected = f"{name} must be {optional}a number{_bounds(low, high, ' in [{low}, {high}]')}"
    else:
        bounds = _bounds(low, high, " in ({low}, {high})").replace(">=", ">").replace("<=", "<")
        expected = f"{name} must be {optional}a number{bounds}"
    if not is_number(value):
        raise TypeError(f"{expected}; got {value!r}")
    below = low is not None and (value < low if inclusive else value <= low)
    above = high is not None and (value > high if inclusive else value >= high)
    if np.isnan(value) or below or above:
        raise ValueError(f"{expected}; got {value!r}")
    return float(value)


def check_finite(array: np.ndarray, name: str) -> None:
    """ValueError naming ``name`` when ``array`` holds NaN or infinite values."""
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")


def check_numeric_dtype(array: np.ndarray, name: str, what: str = "a numeric array") -> None:
    """TypeError naming ``name`` unless ``array`` holds real numbers (not bools, strings or objects)."""
    if array.dtype == bool or not (np.issubdtype(array.dtype, np.integer)
                                   or np.issubdtype(array.dtype, np.floating)):
        raise TypeError(f"{name} must be {what}; got dtype {array.dtype}")


def check_image(image: Any, name: str = "image") -> np.ndarray:
    """``image`` as a non-empty, finite, numeric (H, W) or (H, W, C) array."""
    image = np.asarray(image)
    check_numeric_dtype(image, name, "a numeric (H, W) or (H, W, C) array")
    if image.ndim not in (2, 3):
        raise ValueError(f"{name} must be a numeric (H, W) or (H, W, C) array; got shape {image.shape}")
    if image.size == 0:
        raise ValueError(f"{name} must not be empty; got shape {image.shape}")
    check_finite(image, name)
    return image


def check_pixel_range(array: np.ndarray, name: str, high: float = 255, hint: str = "") -> None:
    """ValueError naming ``name`` unless the finite ``array`` holds values in ``[0, high]``."""
    if array.size == 0:
        return
    low_value, high_value = array.min(), array.max()
    if low_value < 0 or high_value > high:
        scale = f"0..{high:g}" if high > 1 else f"[0, {high:g}]"
        raise ValueError(f"{name} must hold pixels in {scale}{hint}; got values from {low_value:g} "
                         f"to {high_value:g}")


def check_class_range(targets: np.ndarray, n_classes: int, name: str = "targets") -> None:
    """ValueError unless every class index in ``targets`` is in ``[0, n_classes)``."""
    targets = np.asarray(targets)
    bad = targets[(targets < 0) | (targets >= n_classes)]
    if bad.size:
        raise ValueError(f"{name} must lie in [0, {n_classes}) for a model with {n_classes} classes; "
                         f"got {bad.tolist()}")


def check_class_index(value: Any, name: str = "target", n_classes: int | None = None,
                      allow_none: bool = False) -> int | None:
    """``value`` as one class index: an int >= 0, below ``n_classes`` when it is given."""
    if value is None and allow_none:
        return None
    expected = f"{name} must be {'None or ' if allow_none else ''}a non-negative int (a class index)"
    if not is_int(value):
        raise TypeError(f"{expected}; got {value!r}")
    if value < 0:
        raise ValueError(f"{expected}; got {value!r}")
    if n_classes is not None:
        check_class_range(np.asarray([value]), n_classes, name)
    return int(value)


def check_class_indices(targets: Any, n_images: int, n_classes: int | None = None, name: str = "targets",
                        accepted: str = "an int or one int per image") -> np.ndarray:
    """``targets`` (one class index for every image, or one per image) as ``n_images`` int64 indices,
    each >= 0, below 2**31 and, when ``n_classes`` is given, below it."""
    if isinstance(targets, np.ndarray) and targets.ndim == 0:
        targets = targets.item()
    if is_int(targets):
        targets = [targets] * n_images
    if isinstance(targets, (str, bytes)) or not hasattr(targets, "__len__"):
        raise TypeError(f"{name} must be {accepted}; got {type(targets).__name__}")
    if len(targets) != n_images:
        raise ValueError(f"{name} must be {accepted} ({n_images} images); got {len(targets)} targets")
    items = list(targets)
    if not all(is_int(item) for item in items):
        raise TypeError(f"{name} must be class indices (ints); got {targets!r}")
    too_large = [int(item) for item in items if item >= INT32_LIMIT]
    if too_large:
        raise ValueError(f"{name} must be class indices below 2**31; got {too_large}")
    values = np.asarray([int(item) for item in items], dtype=np.int64).reshape(n_images)
    if np.any(values < 0):
        raise ValueError(f"{name} must be class indices >= 0; got {values.tolist()}")
    if n_classes is not None:
        check_class_range(values, n_classes, name)
    return values
