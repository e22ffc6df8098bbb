"""Sample images that ship with imgexplain's dependencies, and the image loader used everywhere.

Nothing is downloaded: the photographs come inside scikit-image's wheel (``skimage.data``).
Every image is resized the same way, by `resize_image` (PIL's bilinear filter, which
antialiases when shrinking); ``imgexplain.zoo``'s reference outputs assume it.
"""
import os
from collections.abc import Iterable

import numpy as np
from PIL import Image, ImageOps

RESAMPLING = Image.Resampling.BILINEAR
# Chelsea is a ginger tabby: ImageNet class 281, "tabby" (EfficientNet-Lite0 says 285, Egyptian cat).
_CATS = (("chelsea", 281, "tabby"),)
_SAMPLES = ("astronaut", "camera", "chelsea", "coffee", "coins", "horse", "hubble_deep_field",
            "immunohistochemistry", "moon", "motorcycle", "retina", "rocket")


class Bunch(dict):
    """A dict whose keys are also attributes, like the Bunch of scikit-learn and alibi."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __dir__(self):
        return [*super().__dir__(), *self.keys()]


def _check_target_size(target_size, allow_none):
    if target_size is None and allow_none:
        return None
    valid = (isinstance(target_size, (tuple, list)) and len(target_size) == 2
             and all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n > 0
                     for n in target_size))
    if not valid:
        expected = "None or " if allow_none else ""
        raise ValueError(f"target_size must be {expected}a (height, width) pair of positive integers; "
                         f"got {target_size!r}")
    return int(target_size[0]), int(target_size[1])


def _as_rgb_uint8(array):
    """A grey, RGB or RGBA array of pixels in 0..255 (or bool) -> (H, W, 3) uint8; alpha is dropped."""
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise TypeError(f"image must be a numeric array of pixels in 0..255; got dtype {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise ValueError(f"image must have shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); "
                         f"got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"image must not be empty; got shape {array.shape}")
    if array.dtype != np.uint8:
        if not np.isfinite(array).all():
            raise ValueError("image contains NaN or infinite values")
        low, high = array.min(), array.max()
        if low < 0 or high > 255:
            raise ValueError(f"image must hold pixels in 0..255 (scale [0, 1] images by 255 first); "
                             f"got values from {low:g} to {high:g}")
        array = np.round(array).astype(np.uint8)
    if array.ndim == 2:
        return np.repeat(array[:, :, None], 3, axis=2)
    return np.ascontiguousarray(array[:, :, :3])


def resize_image(image, size):
    """Resize a (H, W, 3) uint8 image to ``size`` = (height, width) with PIL's bilinear filter."""
    height, width = _check_target_size(size, allow_none=False)
    image = np.asarray(image)
    if image.shape[:2] == (height, width):
        return image.copy()
    return np.asarray(Image.fromarray(image).resize((width, height), RESAMPLING))


def load_image(image, target_size=(224, 224)):
    """Load an image as a (height, width, 3) uint8 RGB array, resized to `target_size`.

    Parameters
    ----------
    image : str, os.PathLike, PIL.Image.Image or array-like
        A file (any format PIL reads; the EXIF orientation is applied), a PIL image, or an array
        of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) with pixels in 0..255 (bool arrays
        count as 0 and 255). Grey images become RGB; an alpha channel is dropped.
    target_size : (int, int) or None
        (height, width) to resize to, aspect ratio not kept; None keeps the image's size.
    """
    size = _check_target_size(target_size, allow_none=True)
    if isinstance(image, (str, os.PathLike)):
        with Image.open(image) as opened:
            array = np.asarray(ImageOps.exif_transpose(opened).convert("RGB"))
    elif isinstance(image, Image.Image):
        array = np.asarray(image.convert("RGB"))
    else:
        array = _as_rgb_uint8(np.asarray(image))
    return array.copy() if size is None else resize_image(array, size)


def _skimage_photo(name):
    import skimage.data

    if name == "motorcycle":
        return skimage.data.stereo_motorcycle()[0]
    return getattr(skimage.data, name)()


def load_cats(target_size=(299, 299), return_X_y=False):
    """Photographs of cats that ship offline, in the manner of ``alibi.datasets.load_cats``.

    Only one cat photograph ships with the dependencies today: scikit-image's ``chelsea``
    (``skimage.data.cat`` is the same picture).

    Parameters
    ----------
    target_size : (int, int)
        (height, width) of the returned images (resized with `resize_image`, aspect not kept).
    return_X_y : bool
        If True, return ``(data, target)`` instead of a `Bunch`.

    Returns
    -------
    Bunch with ``data`` (N, height, width, 3) uint8, ``target`` (N,) ImageNet class indices,
    ``target_names`` (the ImageNet class name of each image) and ``image_names``;
    or ``(data, target)`` if `return_X_y`.
    """
    size = _check_target_size(target_size, allow_none=False)
    if not isinstance(return_X_y, (bool, np.bool_)):
        raise TypeError(f"return_X_y must be True or False; got {return_X_y!r}")
    data = np.stack([load_image(_skimage_photo(name), size) for name, _, _ in _CATS])
    target = np.array([index for _, index, _ in _CATS])
    if return_X_y:
        return data, target
    return Bunch(data=data, target=target, target_names=[label for _, _, label in _CATS],
                 image_names=[name for name, _, _ in _CATS])


def load_samples(target_size=(224, 224), names=None):
    """scikit-image's sample photographs as RGB uint8 arrays, by name.

    The photographs: astronaut, camera (grey), chelsea (a cat), coffee, coins (grey), horse (a
    black silhouette on white, not a photograph), hubble_deep_field, immunohistochemistry, moon
    (grey), motorcycle (the left view of ``stereo_motorcycle``), retina, rocket. Grey images are
    returned as RGB.

    Parameters
    ----------
    target_size : (int, int) or None
        (height, width) to resize to with `resize_image`; None keeps each image's own size.
    names : sequence of str, optional
        Which images to load; all of them by default.

    Returns
    -------
    dict mapping each name to a (height, width, 3) uint8 array, in the order of `names`.
    """
    size = _check_target_size(target_size, allow_none=True)
    if names is None:
        names = _SAMPLES
    else:
        if isinstance(names, str) or not isinstance(names, Iterable):
            raise TypeError(f"names must be a sequence of image names, e.g. ['chelsea']; got {names!r}")
        names = list(names)
        if not all(isinstance(name, str) for name in names):
            raise TypeError(f"names must be a sequence of image names, e.g. ['chelsea']; got {names!r}")
    unknown = [name for name in names if name not in _SAMPLES]
    if unknown:
        raise ValueError(f"names has unknown images {unknown}; the samples are {list(_SAMPLES)}")
    return {name: load_image(_skimage_photo(name), size) for name in names}
