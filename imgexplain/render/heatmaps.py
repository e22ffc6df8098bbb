"""Heatmaps as pictures: colouring a [0, 1] map, laying it over an image (eli5's and pytorch-grad-cam's ways)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Union

import matplotlib
import matplotlib.cm
import numpy as np
from PIL import Image

from imgexplain._checks import check_finite, check_int, check_number, check_pixel_range, is_int, is_number
from imgexplain.render.opencv import COLORMAP_JET, opencv_colormap

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

# A colormap, its name, an OpenCV colormap constant, or a callable from values in [0, 1] to colours.
Colormap = Union[str, int, matplotlib.colors.Colormap, Callable]

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
    if not is_number(alpha_limit):
        raise TypeError(f"alpha_limit must be a number or None; got {type(alpha_limit).__name__}")
    if 0 <= alpha_limit <= 1:
        return float(alpha_limit)
    if 1 < alpha_limit <= 255:
        return float(alpha_limit) / 255
    raise ValueError(f"alpha_limit must be a fraction in [0, 1] (or a 0..255 value); got {alpha_limit}")


def resolve_colormap(colormap):
    if is_int(colormap):
        colormap = opencv_colormap(colormap)
    if isinstance(colormap, str):
        try:
            return matplotlib.colormaps[colormap]
        except KeyError:
            raise ValueError(f"colormap {colormap!r} is not a matplotlib colormap") from None
    if not callable(colormap):
        raise TypeError(f"colormap must be a matplotlib colormap, its name, or a callable; "
                        f"got {type(colormap).__name__}")
    return colormap


def colormap_colors(colormap: Colormap, values: ArrayLike) -> np.ndarray:
    """The RGBA colours (floats in [0, 1]) of ``values`` in [0, 1] under ``colormap``.

    Parameters
    ----------
    colormap : str, matplotlib colormap or callable
        A colormap or its name.
    values : array-like
        Values in [0, 1].

    Returns
    -------
    ndarray
        ``values.shape + (4,)`` floats (or ``+ (3,)`` for a callable that returns RGB).

    Raises
    ------
    ValueError
        An unknown colormap name.

    Examples
    --------
    >>> from imgexplain.render import colormap_colors
    >>> colormap_colors("gray", [0.0, 1.0])
    array([[0., 0., 0., 1.],
           [1., 1., 1., 1.]])
    """
    return np.asarray(resolve_colormap(colormap)(np.asarray(values, dtype=np.float64)), dtype=np.float64)


def overlay_colormap(colormap: Colormap = matplotlib.cm.viridis, alpha_limit: float = 0.65,
                     steps: int = 256) -> matplotlib.colors.ListedColormap:
    """The colours an overlay really shows, for its colour bar: ``colormap``'s colour of each value with
    the opacity :func:`colorize_heatmap` gives it (the value, capped at ``alpha_limit``), so that cold
    values are as transparent in the bar as in the overlay.

    Parameters
    ----------
    colormap : str, matplotlib colormap or callable
        A colormap or its name.
    alpha_limit : float
        As in :func:`colorize_heatmap`.
    steps : int
        Colours in the result.

    Returns
    -------
    matplotlib.colors.ListedColormap

    Raises
    ------
    TypeError, ValueError
        `steps` is not an int of at least 2, or as in :func:`colorize_heatmap`.

    Examples
    --------
    >>> from imgexplain.render import overlay_colormap
    >>> bar = overlay_colormap("gray", alpha_limit=0.5, steps=3)
    >>> bar.colors[:, 3]  # the opacity: transparent at 0, as the overlay
    array([0. , 0.5, 0.5])
    """
    values = np.linspace(0.0, 1.0, check_int(steps, "steps", low=2))
    rgba = colorize_heatmap(values[np.newaxis], colormap=colormap, alpha_limit=alpha_limit)[0]
    return matplotlib.colors.ListedColormap(rgba, name="overlay")


def colorize_heatmap(heatmap: np.ndarray, colormap: Colormap = matplotlib.cm.viridis,
                     alpha_limit: float = 0.65) -> np.ndarray:
    """Colour a 2-D ``heatmap`` in [0, 1] with ``colormap``; the alpha channel is the heat value, capped.

    Parameters
    ----------
    heatmap : (h, w) ndarray
        Values in [0, 1].
    colormap : str, matplotlib colormap or callable
        A colormap or its name.
    alpha_limit : float
        The largest opacity: a fraction in [0, 1], or a value in (1, 255] read on the 0..255 scale.

    Returns
    -------
    (h, w, 4) float ndarray
        RGBA in [0, 1].

    Raises
    ------
    TypeError
        `heatmap` is not a numpy array.
    ValueError
        A heatmap that is not 2-D in [0, 1], an `alpha_limit` out of range, or a colormap that does
        not give (h, w, 3) or (h, w, 4) colours.

    Examples
    --------
    >>> from imgexplain.render import colorize_heatmap
    >>> import numpy as np
    >>> colorize_heatmap(np.array([[0.0, 1.0]]), colormap="gray", alpha_limit=0.5)
    array([[[0. , 0. , 0. , 0. ],
            [1. , 1. , 1. , 0.5]]])
    """
    heatmap = _check_heatmap(heatmap)
    cap = _alpha_cap(alpha_limit)
    colours = np.asarray(resolve_colormap(colormap)(heatmap), dtype=np.float64)
    if colours.shape not in (heatmap.shape + (3,), heatmap.shape + (4,)):
        raise ValueError(f"colormap must map an (h, w) array to (h, w, 3) or (h, w, 4) colours; "
                         f"got shape {colours.shape}")
    rgba = np.empty(heatmap.shape + (4,))
    rgba[..., :3] = colours[..., :3]
    rgba[..., 3] = np.minimum(heatmap, cap)
    return rgba


def overlay_heatmap(image: Image.Image | np.ndarray, heatmap: np.ndarray, colormap: Colormap = matplotlib.cm.viridis,
                    alpha_limit: float = 0.65, resampling_filter: int = Image.LANCZOS) -> Image.Image:
    """Colour ``heatmap`` (see :func:`colorize_heatmap`), resize it to ``image`` and composite it over.

    Parameters
    ----------
    image : PIL.Image.Image or uint8 ndarray
        The picture, (H, W) or (H, W, C) when an array.
    heatmap : (h, w) ndarray
        Values in [0, 1], of any size.
    colormap, alpha_limit
        As in :func:`colorize_heatmap`.
    resampling_filter : int
        The PIL filter that resizes the coloured heatmap to the image.

    Returns
    -------
    PIL.Image.Image
        RGBA, of the image's size.

    Raises
    ------
    TypeError
        `image` is neither a PIL image nor an array, or `heatmap` is not an array.
    ValueError
        An array that is not uint8 (H, W) or (H, W, C), or as in :func:`colorize_heatmap`.

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain.render import overlay_heatmap
    >>> picture = overlay_heatmap(np.zeros((4, 6, 3), np.uint8), np.array([[0.0, 1.0]]), colormap="gray",
    ...                           alpha_limit=1.0)
    >>> picture.size, picture.mode
    ((6, 4), 'RGBA')
    """
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


def format_as_image(expl: Any, resampling_filter: int = Image.LANCZOS, colormap: Colormap = matplotlib.cm.viridis,
                    alpha_limit: float = 0.65) -> Image.Image:
    """Lay the heatmap of ``expl`` over its image, as ``eli5.format_as_image`` does.

    ``expl`` needs ``.image`` (a PIL image) and ``.targets``, whose first element's
    ``.heatmap`` is drawn. The heatmap is coloured with ``colormap``, made as opaque as
    it is hot but no more than ``alpha_limit``, resized to the image with
    ``resampling_filter`` and composited over it.

    Parameters
    ----------
    expl : CAMExplanation
        Or any object with ``.image`` and ``.targets``.
    resampling_filter : int
        A PIL resampling filter.
    colormap, alpha_limit
        As in :func:`colorize_heatmap`.

    Returns
    -------
    PIL.Image.Image
        RGBA, of the image's size; with no targets, the image itself in RGBA.

    Raises
    ------
    TypeError
        `expl` has no ``.image`` (a PIL image) or no ``.targets``.
    ValueError
        As in :func:`colorize_heatmap`.

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain import CAMExplanation, CAMResult, format_as_image
    >>> result = CAMResult(maps=np.array([[[0.0, 1.0]]]), targets=np.array([1]),
    ...                    scores=np.array([0.9]), layer="conv", method="gradcam")
    >>> explanation = CAMExplanation.from_result(result, np.zeros((10, 20, 3), np.uint8), meta={})
    >>> format_as_image(explanation, alpha_limit=0.8).size
    (20, 10)
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


def show_cam_on_image(image: np.ndarray, mask: np.ndarray, use_rgb: bool = True, colormap: Colormap = COLORMAP_JET,
                      image_weight: float = 0.5) -> np.ndarray:
    """Blend a class activation map into an image, as pytorch-grad-cam's ``show_cam_on_image``.

    ``image`` is (H, W, 3) or (H, W): floats in [0, 1] or uint8. ``mask`` is a 2-D map in [0, 1]
    (resized bilinearly to the image when its size differs). The result is
    ``(1 - image_weight) * colormap(mask) + image_weight * image``, divided by its maximum, as an
    (H, W, 3) uint8 picture, RGB (or BGR, as OpenCV's, with ``use_rgb=False``).

    Parameters
    ----------
    image : (H, W, 3) or (H, W) ndarray
        Floats in [0, 1] or uint8 pixels.
    mask : (h, w) float ndarray
        The map, in [0, 1].
    use_rgb : bool
        True: the colours are RGB; False: BGR, for ``cv2.imwrite``. (pytorch-grad-cam's default is
        False; imgexplain's pictures are RGB everywhere.)
    colormap : int, str, matplotlib colormap or callable
        OpenCV's ``COLORMAP_JET`` (the int 2, as ``cv2.COLORMAP_JET``), which pytorch-grad-cam uses,
        by default; another OpenCV constant (see :mod:`imgexplain.render.opencv`), or a matplotlib
        colormap or its name.
    image_weight : float
        The image's share of the blend, in [0, 1].

    Returns
    -------
    (H, W, 3) uint8 ndarray

    Raises
    ------
    TypeError
        An image neither float nor uint8.
    ValueError
        Values out of range, a wrong shape, or an `image_weight` outside [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain import show_cam_on_image
    >>> image = np.full((4, 4, 3), 0.5)
    >>> blended = show_cam_on_image(image, np.eye(2), colormap="gray", image_weight=0.5)
    >>> blended.shape, blended.dtype
    ((4, 4, 3), dtype('uint8'))
    """
    picture = np.asarray(image)
    if picture.dtype == np.uint8:
        picture = picture / 255.0
    elif not np.issubdtype(picture.dtype, np.floating):
        raise TypeError(f"image must be floats in [0, 1] or uint8; got dtype {picture.dtype}")
    else:
        check_finite(picture, "image")
        check_pixel_range(picture, "image", high=1, hint=" as floats; scale it (or pass uint8 pixels)")
    if picture.ndim == 3 and picture.shape[2] == 1:
        picture = picture[:, :, 0]
    if picture.ndim == 2:
        picture = np.repeat(picture[:, :, None], 3, axis=2)
    if picture.ndim != 3 or picture.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) or (H, W); got shape {picture.shape}")
    image_weight = check_number(image_weight, "image_weight", 0, 1)
    mask = _check_heatmap(np.asarray(mask) if isinstance(mask, np.ndarray) else mask)
    if mask.shape != picture.shape[:2]:
        from imgexplain.cam.maps import resize_maps

        mask = np.clip(resize_maps(mask[None], picture.shape[:2])[0], 0, 1)
    colours = np.asarray(resolve_colormap(colormap)(mask), dtype=np.float64)[..., :3]
    blended = (1 - image_weight) * colours + image_weight * picture
    blended /= max(blended.max(), 1e-12)
    blended = np.round(blended * 255).astype(np.uint8)
    return blended if use_rgb else blended[..., ::-1]


# --- figures -------------------------------------------------------------------------------------------
