"""Pictures of explanations (Pillow and matplotlib colormaps).

Heatmaps: :func:`colorize_heatmap` turns a [0, 1] map into RGBA whose opacity follows the
heat, :func:`overlay_heatmap` lays it over an image, and :func:`format_as_image` does both
for a class activation map explanation, as ``eli5.format_as_image`` does.
"""
from __future__ import annotations

from numbers import Real

import matplotlib
import matplotlib.cm
import numpy as np
from PIL import Image


def _check_heatmap(heatmap):
    if not isinstance(heatmap, np.ndarray):
        raise TypeError(f"heatmap must be a numpy array; got {type(heatmap).__name__}")
    if heatmap.ndim != 2:
        raise ValueError(f"heatmap must be 2-D (h, w); got shape {heatmap.shape}")
    if not np.issubdtype(heatmap.dtype, np.floating):
        raise TypeError(f"heatmap must hold floats in [0, 1]; got dtype {heatmap.dtype}")
    if heatmap.size == 0 or not np.all(np.isfinite(heatmap)) or heatmap.min() < 0 or heatmap.max() > 1:
        low, high = (np.nanmin(heatmap), np.nanmax(heatmap)) if heatmap.size else (None, None)
        raise ValueError(f"heatmap must hold finite values in [0, 1]; got minimum {low} and "
                         f"maximum {high}")
    return np.asarray(heatmap, dtype=np.float64)


def _alpha_cap(alpha_limit):
    """The opacity cap as a fraction: [0, 1] is a fraction, (1, 255] is read on the 0..255
    scale of eli5's first releases (whose tutorial passes ``alpha_limit=255.``)."""
    if alpha_limit is None:
        return 1.0
    if isinstance(alpha_limit, bool) or not isinstance(alpha_limit, Real):
        raise TypeError(f"alpha_limit must be a number or None; got {type(alpha_limit).__name__}")
    if 0 <= alpha_limit <= 1:
        return float(alpha_limit)
    if 1 < alpha_limit <= 255:
        return float(alpha_limit) / 255
    raise ValueError(f"alpha_limit must be a fraction in [0, 1] (or a 0..255 value); got {alpha_limit}")


def _colormap(colormap):
    if isinstance(colormap, str):
        try:
            return matplotlib.colormaps[colormap]
        except KeyError:
            raise ValueError(f"colormap {colormap!r} is not a matplotlib colormap") from None
    if not callable(colormap):
        raise TypeError(f"colormap must be a matplotlib colormap, its name, or a callable; "
                        f"got {type(colormap).__name__}")
    return colormap


def colorize_heatmap(heatmap, colormap=matplotlib.cm.viridis, alpha_limit=0.65) -> np.ndarray:
    """Colour a 2-D ``heatmap`` in [0, 1] with ``colormap``; the alpha channel is the heat
    value, capped at ``alpha_limit``. Returns an ``(h, w, 4)`` float array in [0, 1]."""
    heatmap = _check_heatmap(heatmap)
    cap = _alpha_cap(alpha_limit)
    colours = np.asarray(_colormap(colormap)(heatmap), dtype=np.float64)
    if colours.shape not in (heatmap.shape + (3,), heatmap.shape + (4,)):
        raise ValueError(f"colormap must map an (h, w) array to (h, w, 3) or (h, w, 4) colours; "
                         f"got shape {colours.shape}")
    rgba = np.empty(heatmap.shape + (4,))
    rgba[..., :3] = colours[..., :3]
    rgba[..., 3] = np.minimum(heatmap, cap)
    return rgba


def overlay_heatmap(image, heatmap, colormap=matplotlib.cm.viridis, alpha_limit=0.65,
                    resampling_filter=Image.LANCZOS) -> Image.Image:
    """Colour ``heatmap`` (see :func:`colorize_heatmap`), resize it to ``image`` with
    ``resampling_filter`` and composite it over the image. Returns an RGBA PIL image."""
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise ValueError(f"image must be a PIL image or a uint8 (H, W) or (H, W, C) array; got "
                             f"{image.dtype} with shape {image.shape}")
        image = Image.fromarray(image)
    if not isinstance(image, Image.Image):
        raise TypeError(f"image must be a PIL image; got {type(image).__name__}")
    rgba = colorize_heatmap(heatmap, colormap=colormap, alpha_limit=alpha_limit)
    layer = Image.fromarray(np.round(rgba * 255).astype(np.uint8), mode="RGBA")
    layer = layer.resize(image.size, resample=resampling_filter)
    return Image.alpha_composite(image.convert("RGBA"), layer)


def format_as_image(expl, resampling_filter=Image.LANCZOS, colormap=matplotlib.cm.viridis,
                    alpha_limit=0.65) -> Image.Image:
    """Lay the heatmap of ``expl`` over its image, as ``eli5.format_as_image`` does.

    ``expl`` needs ``.image`` (a PIL image) and ``.targets``, whose first element's
    ``.heatmap`` is drawn. The heatmap is coloured with ``colormap``, made as opaque as
    it is hot but no more than ``alpha_limit``, resized to the image with
    ``resampling_filter`` and composited over it. Returns an RGBA PIL image; with no
    targets, the image itself in RGBA.
    """
    for name in ("image", "targets"):
        if not hasattr(expl, name):
            raise TypeError(f"expl must be an explanation with .image and .targets; "
                            f"{type(expl).__name__} has no .{name}")
    image = expl.image
    if not isinstance(image, Image.Image):
        raise TypeError(f"expl.image must be a PIL image; got {type(image).__name__}")
    if not expl.targets:
        return image.convert("RGBA")
    return overlay_heatmap(image, np.asarray(expl.targets[0].heatmap), colormap=colormap,
                           alpha_limit=alpha_limit, resampling_filter=resampling_filter)
