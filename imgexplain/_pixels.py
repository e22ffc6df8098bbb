"""Pixels of any mode or dtype as (H, W, 3) uint8 RGB: what :func:`imgexplain.datasets.load_image` makes of
arrays and decoded files (grey repeated, alpha composited on white, 16-bit, 32-bit and float grey scaled by
their own range), saying by logging what was changed."""
from __future__ import annotations

import logging

import numpy as np
from PIL import Image

from imgexplain._checks import check_finite, check_numeric_dtype, check_pixel_range

_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
logger = logging.getLogger("imgexplain.datasets")  # load_image's logger, as its docstring says


def as_rgb_uint8(array):
    """A grey, RGB or RGBA array of pixels in 0..255 (or bool) -> (H, W, 3) uint8; alpha composited on white."""
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    check_numeric_dtype(array, "image", "a numeric array of pixels in 0..255")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise ValueError(f"image must have shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); "
                         f"got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"image must not be empty; got shape {array.shape}")
    if array.dtype != np.uint8:
        check_finite(array, "image")
        check_pixel_range(array, "image", hint=" (scale [0, 1] images by 255 first)")
        array = np.round(array).astype(np.uint8)
    if array.ndim == 2:
        return np.repeat(array[:, :, None], 3, axis=2)
    if array.shape[2] == 4:
        return rgb_from_pil(Image.fromarray(array), "image")
    return np.ascontiguousarray(array)


def rgb_from_pil(picture, name):
    """An (H, W, 3) uint8 array of a PIL image of any mode, saying (by logging) what was changed.

    16-bit grey is divided by 257; 32-bit integer grey within 0..65535 is taken as 16-bit; floating-point
    grey in [0, 1] is multiplied by 255, and any other range is stretched from its minimum and maximum to
    0..255. Transparent pixels are composited on white.
    """
    if picture.mode in _SIXTEEN_BIT_MODES + ("I", "F"):
        return as_rgb_uint8(grey_to_uint8(np.array(picture), name))
    if "A" in picture.mode or "a" in picture.mode or "transparency" in picture.info:
        rgba = picture.convert("RGBA")
        if rgba.getextrema()[3][0] < 255:
            logger.warning("%s: transparent pixels composited on white", name)
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            rgba = Image.alpha_composite(white, rgba)
        picture = rgba
    return np.array(picture.convert("RGB"))


def grey_to_uint8(values, name):
    """Grey pixels of a 16-bit, 32-bit integer or floating-point image -> uint8, by the file's own range."""
    check_finite(values, name)
    low, high = values.min(), values.max()
    if values.dtype.kind in "iu" and low >= 0 and high <= 65535:
        logger.info("%s: 16-bit pixels scaled to 0..255 (divided by 257)", name)
        return ((values.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if values.dtype.kind == "f" and low >= 0 and high <= 1:
        logger.info("%s: floating-point pixels in [0, 1] scaled to 0..255", name)
        return np.round(values * np.float32(255)).astype(np.uint8)
    logger.warning("%s: pixel values from %g to %g stretched to 0..255", name, low, high)
    if high == low:
        return np.zeros(values.shape, dtype=np.uint8)
    scale = 255 / (float(high) - float(low))
    return np.round((values - low) * scale).astype(np.uint8)
