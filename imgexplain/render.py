"""Pictures of explanations (Pillow and matplotlib colormaps).

Heatmaps: :func:`colorize_heatmap` turns a [0, 1] map into RGBA whose opacity follows the
heat, :func:`overlay_heatmap` lays it over an image, and :func:`format_as_image` does both
for a class activation map explanation, as ``eli5.format_as_image`` does;
:func:`show_cam_on_image` blends a map into an image as pytorch-grad-cam's function of that name.
Plots are pyplot figures (``plt.show()`` and ``plt.savefig`` see them) that Jupyter shows once.
"""
from __future__ import annotations

import io
import sys
import textwrap
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Callable, Union

import matplotlib
import matplotlib.cm
import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from imgexplain._checks import check_finite, check_number, check_pixel_range, is_number

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from numpy.typing import ArrayLike

# A colormap, its name, or a callable from values in [0, 1] to colours.
Colormap = Union[str, matplotlib.colors.Colormap, Callable]
# Class names by index.
Labels = Union[Sequence[str], Mapping[int, str]]


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
    return np.asarray(_colormap(colormap)(np.asarray(values, dtype=np.float64)), dtype=np.float64)


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
    colours = np.asarray(_colormap(colormap)(heatmap), dtype=np.float64)
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


def show_cam_on_image(image: np.ndarray, mask: np.ndarray, colormap: Colormap = "jet",
                      image_weight: float = 0.5) -> np.ndarray:
    """Blend a class activation map into an image, as pytorch-grad-cam's ``show_cam_on_image``.

    ``image`` is (H, W, 3) or (H, W): floats in [0, 1] or uint8. ``mask`` is a 2-D map in [0, 1]
    (resized bilinearly to the image when its size differs). The result is
    ``(1 - image_weight) * colormap(mask) + image_weight * image``, divided by its maximum, as an
    (H, W, 3) uint8 RGB picture.

    Parameters
    ----------
    image : (H, W, 3) or (H, W) ndarray
        Floats in [0, 1] or uint8 pixels.
    mask : (h, w) float ndarray
        The map, in [0, 1].
    colormap : str, matplotlib colormap or callable
        ``"jet"``, as OpenCV's ``COLORMAP_JET`` that pytorch-grad-cam uses, by default.
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
        from imgexplain.cam.methods import resize_maps

        mask = np.clip(resize_maps(mask[None], picture.shape[:2])[0], 0, 1)
    colours = np.asarray(_colormap(colormap)(mask), dtype=np.float64)[..., :3]
    blended = (1 - image_weight) * colours + image_weight * picture
    blended /= max(blended.max(), 1e-12)
    return np.round(blended * 255).astype(np.uint8)


# --- figures -------------------------------------------------------------------------------------------

class ExplanationFigure(Figure):
    """A matplotlib figure of an explanation; Jupyter shows it with :func:`figure_png`.

    :func:`new_figure` makes them; :func:`plot_cam` and :func:`plot_anchor` draw on them.

    Examples
    --------
    >>> from imgexplain.render import ExplanationFigure, new_figure
    >>> isinstance(new_figure(), ExplanationFigure)
    True
    """


def figure_png(figure: Figure) -> bytes:
    """A figure as PNG bytes, taken out of pyplot's list of figures first.

    Jupyter's picture of an explanation, which the inline backend then does not show a second time
    at the end of the cell.

    Parameters
    ----------
    figure : matplotlib.figure.Figure

    Returns
    -------
    bytes
        The PNG file.

    Examples
    --------
    >>> from imgexplain.render import figure_png, new_figure
    >>> figure_png(new_figure(figsize=(1, 1)))[1:4]
    b'PNG'
    """
    import matplotlib.pyplot as plt

    plt.close(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def _ipython_shell():
    """The running IPython shell (Jupyter), or None."""
    ipython = sys.modules.get("IPython")
    return ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None


def new_figure(**kwargs: Any) -> ExplanationFigure:
    """A pyplot figure (so ``plt.show()``, ``plt.savefig`` and Jupyter's inline backend see it)
    that Jupyter shows once when it is a cell's value.

    Parameters
    ----------
    **kwargs
        As in ``matplotlib.pyplot.figure``.

    Returns
    -------
    ExplanationFigure

    Examples
    --------
    >>> from imgexplain.render import new_figure
    >>> new_figure(figsize=(2, 1)).get_size_inches()
    array([2., 1.])
    """
    import matplotlib.pyplot as plt

    shell = _ipython_shell()
    if shell is not None:
        shell.display_formatter.formatters["image/png"].for_type(ExplanationFigure, figure_png)
    return plt.figure(FigureClass=ExplanationFigure, **kwargs)


def class_name(target: int, labels: Labels | None = None) -> str:
    """``"class 3"``, or ``"Egyptian cat (285)"`` when ``labels`` names the class.

    Parameters
    ----------
    target : int
        The class index.
    labels : sequence or mapping of str, optional
        Class names by index.

    Returns
    -------
    str

    Examples
    --------
    >>> from imgexplain.render import class_name
    >>> class_name(3), class_name(1, ["cat", "dog"]), class_name(5, {5: "fox"})
    ('class 3', 'dog (1)', 'fox (5)')
    """
    if labels is not None:
        try:
            return f"{labels[target]} ({target})"
        except (KeyError, IndexError, TypeError):
            pass
    return f"class {target}"


def plot_cam(explanation: Any, ax: Axes | None = None, labels: Labels | None = None,
             **format_kwargs: Any) -> Figure:
    """Draw a class activation map explanation: its first target's map over the image, with a colour bar.

    Parameters
    ----------
    explanation : CAMExplanation
        What :func:`imgexplain.explain_prediction` returns.
    ax : matplotlib Axes, optional
        Where to draw; by default a new pyplot figure that Jupyter shows once.
    labels : sequence or mapping of str, optional
        Class names (such as ``[c.name for c in imgexplain.zoo.imagenet_class_index()]``) that name the
        class in the title.
    **format_kwargs
        ``resampling_filter``, ``colormap``, ``alpha_limit``, as in :func:`format_as_image`.

    Returns
    -------
    matplotlib.figure.Figure
        The figure of `ax`, or the new one.

    Raises
    ------
    TypeError, ValueError
        As in :func:`format_as_image`.

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain import CAMExplanation, CAMResult
    >>> from imgexplain.render import plot_cam
    >>> result = CAMResult(maps=np.array([[[0.0, 1.0]]]), targets=np.array([1]),
    ...                    scores=np.array([0.9]), layer="conv", method="gradcam")
    >>> explanation = CAMExplanation.from_result(result, np.zeros((10, 20, 3), np.uint8), meta={})
    >>> figure = plot_cam(explanation, labels=["cat", "dog"])
    >>> figure.axes[0].get_title()
    'gradcam at conv: dog (1) (score 0.9)'
    """
    import matplotlib.colors

    if ax is None:
        figure = new_figure(figsize=(5, 4.2))
        ax = figure.subplots()
    else:
        figure = ax.figure
    colormap = _colormap(format_kwargs.get("colormap", matplotlib.cm.viridis))
    ax.imshow(format_as_image(explanation, **format_kwargs))
    ax.set_axis_off()
    if explanation.data["targets"]:
        first = explanation.targets[0]
        ax.set_title(f"{explanation.method} at {explanation.layer}: {class_name(first.target, labels)} "
                     f"(score {first.score:.3g})")
    if isinstance(colormap, matplotlib.colors.Colormap):
        mappable = matplotlib.cm.ScalarMappable(norm=matplotlib.colors.Normalize(0, 1), cmap=colormap)
        figure.colorbar(mappable, ax=ax, fraction=0.046, pad=0.04, label="relevance")
    return figure


# --- anchor and superpixel pictures ---------------------------------------------------------------------

EMPTY_ANCHOR_TEXT = "empty anchor: the prediction holds whatever is perturbed"
_ANCHOR_OUTLINE = (220, 20, 60)
_FADED_GREY = 235.0


def _rgb_picture(image, argument: str = "image") -> np.ndarray:
    """A (H, W) or (H, W, 1 | 3) image as (H, W, 3) uint8 for display.

    uint8 is kept; floats in [0, 1] are scaled by 255; floats in [0, 255] are kept;
    anything else (a preprocessed image in [-1, 1], say) is stretched to 0..255.
    """
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{argument}: expected an (H, W), (H, W, 1) or (H, W, 3) image; got shape {image.shape}")
    if image.dtype == np.uint8:
        return image
    image = image.astype(np.float64)
    check_finite(image, f"{argument}: the image")
    low, high = image.min(), image.max()
    if low >= 0 and high <= 1:
        image = image * 255
    elif low < 0 or high > 255:
        image = (image - low) * (255 / max(high - low, 1e-12))
    return np.round(image).astype(np.uint8)


def _check_segments(segments, shape) -> np.ndarray:
    segments = np.asarray(segments)
    if segments.shape != tuple(shape):
        raise ValueError(f"segments: expected a label image of shape {tuple(shape)}; got {segments.shape}")
    return segments


def _write_banner(picture: np.ndarray, text: str) -> np.ndarray:
    """Write ``text`` in white on a dark band across the top of ``picture``, wrapped to its width."""
    from PIL import Image, ImageDraw, ImageFont

    canvas = Image.fromarray(picture)
    width = canvas.width
    font = ImageFont.load_default(size=max(10, width // 16))
    margin = max(3, width // 40)
    lines, line = [], ""
    for word in text.split():
        candidate = f"{line} {word}".strip()
        if line and font.getlength(candidate) > width - 2 * margin:
            lines.append(line)
            candidate = word
        line = candidate
    lines.append(line)
    ascent, descent = font.getmetrics()
    line_height = ascent + descent + 2
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, 0, width, 2 * margin + line_height * len(lines)), fill=(40, 40, 40))
    for i, line in enumerate(lines):
        draw.text((margin, margin + i * line_height), line, fill=(255, 255, 255), font=font)
    return np.asarray(canvas)


def anchor_picture(image: np.ndarray, segments: np.ndarray, features: Sequence[int]) -> np.ndarray:
    """The anchor superpixels as they are, outlined, and the rest of the image faded to grey.

    Anchor pixels keep their values exactly. An empty anchor (nothing needs to be kept) fades the
    whole image and writes `EMPTY_ANCHOR_TEXT` across it.

    Parameters
    ----------
    image : (H, W) or (H, W, 3) ndarray
        The image explained.
    segments : (H, W) int ndarray
        Its superpixels' labels.
    features : sequence of int
        The labels of the anchor's superpixels.

    Returns
    -------
    (H, W, 3) uint8 ndarray

    Raises
    ------
    ValueError
        `segments` of another shape than the image, or `features` that are not labels of it.

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain.render import anchor_picture
    >>> image = np.full((8, 8, 3), 100, np.uint8)
    >>> segments = np.repeat([0, 1], 32).reshape(8, 8)
    >>> picture = anchor_picture(image, segments, [1])
    >>> bool((picture[segments == 1] == 100).all()), bool((picture[segments == 0] == 100).any())
    (True, False)
    """
    from skimage.color import rgb2gray
    from skimage.morphology import dilation
    from skimage.segmentation import find_boundaries

    picture = _rgb_picture(image)
    segments = _check_segments(segments, picture.shape[:2])
    features = np.asarray(features, dtype=np.int64).ravel()
    unknown = np.setdiff1d(features, np.unique(segments))
    if unknown.size:
        raise ValueError(f"features: superpixel ids {unknown.tolist()} are not labels of segments")
    in_anchor = np.isin(segments, features)
    grey = rgb2gray(picture)[:, :, None] * 255
    faded = np.round(0.35 * grey + 0.65 * _FADED_GREY).astype(np.uint8)
    result = np.where(in_anchor[:, :, None], picture, faded)
    if not in_anchor.any():
        return _write_banner(result, EMPTY_ANCHOR_TEXT)
    # A two-pixel outline drawn outside the anchor, so the anchor's own pixels stay untouched.
    outline = dilation(find_boundaries(in_anchor, mode="outer")) & ~in_anchor
    result[outline] = _ANCHOR_OUTLINE
    return result


def boundaries_picture(image: np.ndarray, segments: np.ndarray, numbers: bool = True) -> np.ndarray:
    """The image with the superpixel boundaries drawn in yellow (skimage ``mark_boundaries``).

    Parameters
    ----------
    image : (H, W) or (H, W, 3) ndarray
        The image.
    segments : (H, W) int ndarray
        Its superpixels' labels.
    numbers : bool
        Write each superpixel's id at its centre, so the ids of an anchor
        (``explanation.data['raw']['feature']``) can be found on the picture.

    Returns
    -------
    (H, W, 3) uint8 ndarray

    Raises
    ------
    ValueError
        `segments` of another shape than the image.

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain.render import boundaries_picture
    >>> segments = np.repeat([0, 1], 32).reshape(8, 8)  # rows 0-3 and rows 4-7
    >>> picture = boundaries_picture(np.zeros((8, 8, 3), np.uint8), segments, numbers=False)
    >>> picture[:, 0, 0]  # the red channel of the first column: yellow on both sides of the boundary
    array([  0,   0,   0, 255, 255,   0,   0,   0], dtype=uint8)
    """
    from PIL import Image, ImageDraw, ImageFont
    from skimage.segmentation import mark_boundaries

    picture = _rgb_picture(image)
    segments = _check_segments(segments, picture.shape[:2])
    marked = np.round(mark_boundaries(picture, segments, color=(1, 1, 0), mode="thick") * 255).astype(np.uint8)
    if not numbers:
        return marked
    canvas = Image.fromarray(marked)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=max(9, canvas.width // 20))
    for label, (row, col) in label_positions(segments).items():
        draw.text((col, row), str(label), fill=(255, 255, 255), font=font, anchor="mm",
                  stroke_width=2, stroke_fill=(0, 0, 0))
    return np.asarray(canvas)


def label_positions(segments: np.ndarray,
                    labels: Sequence[int] | None = None) -> dict[int, tuple[int, int]]:
    """For each superpixel, its pixel farthest from any boundary, where its id can be written inside it
    even when it is not convex.

    Parameters
    ----------
    segments : (H, W) int ndarray
        Superpixel labels.
    labels : sequence of int, optional
        Only these superpixels; all by default.

    Returns
    -------
    dict of int to (int, int)
        ``{label: (row, col)}``, the position as numpy ints.

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain.render import label_positions
    >>> segments = np.repeat([[0, 1]], 5, axis=0).repeat(5, axis=1)  # two 5 x 5 squares side by side
    >>> {label: (int(row), int(col)) for label, (row, col) in label_positions(segments).items()}
    {0: (2, 3), 1: (2, 7)}
    """
    from scipy.ndimage import distance_transform_edt, maximum_position
    from skimage.segmentation import find_boundaries

    edges = find_boundaries(segments, mode="inner")
    edges[[0, -1], :] = edges[:, [0, -1]] = True
    depth = distance_transform_edt(~edges)
    labels = np.unique(segments) if labels is None else np.asarray(labels).ravel()
    return {int(label): position
            for label, position in zip(labels, maximum_position(depth, labels=segments, index=labels))}


def _prediction(raw: dict, labels=None) -> str:
    prediction = np.ravel(raw.get("prediction", []))
    return class_name(int(prediction[0]), labels) if prediction.size else "class unknown"


def plot_anchor(explanation: Any, ax: Axes | Sequence[Axes] | None = None,
                labels: Labels | None = None) -> Figure:
    """Draw an anchor explanation with matplotlib: image | anchor (its superpixels numbered) |
    superpixels.

    Parameters
    ----------
    explanation : AnchorImageExplanation
        What :meth:`imgexplain.AnchorImage.explain` returns.
    ax : None, matplotlib Axes or a sequence of three
        None draws a new pyplot figure; one axes draws the anchor picture only.
    labels : sequence or mapping of str, optional
        Class names, for the predicted class in the title.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        `ax` is a sequence of other than three axes.

    Examples
    --------
    An explanation as :meth:`imgexplain.AnchorImage.explain` returns it, written by hand:

    >>> import numpy as np
    >>> from imgexplain import Explanation
    >>> from imgexplain.render import plot_anchor
    >>> segments = np.repeat([0, 1], 32).reshape(8, 8)
    >>> explanation = Explanation(meta={}, data={
    ...     "segments": segments, "precision": 0.97, "coverage": 0.5,
    ...     "raw": {"instance": np.full((8, 8, 3), 90, np.uint8), "feature": [1], "prediction": [3]}})
    >>> figure = plot_anchor(explanation, labels={3: "cat"})
    >>> [axis.get_title() for axis in figure.axes]
    ['image, predicted cat (3)', 'anchor: precision 0.97, coverage 0.50', '2 superpixels']
    """
    from matplotlib.axes import Axes

    raw = explanation.data["raw"]
    image, segments, features = raw["instance"], explanation.data["segments"], raw["feature"]
    precision, coverage = float(explanation.data["precision"]), float(explanation.data["coverage"])
    if len(features):
        anchor_title = f"anchor: precision {precision:.2f}, coverage {coverage:.2f}"
    else:
        anchor_title = textwrap.fill(EMPTY_ANCHOR_TEXT, width=21)
    panels = [
        (_rgb_picture(image), f"image, predicted {_prediction(raw, labels)}"),
        (anchor_picture(image, segments, features), anchor_title),
        (boundaries_picture(image, segments), f"{int(np.max(segments)) + 1} superpixels"),
    ]
    if ax is None:
        figure = new_figure(figsize=(12, 4.4), layout="constrained")
        axes = figure.subplots(1, 3)
    elif isinstance(ax, Axes):
        axes, panels = [ax], panels[1:2]
    else:
        axes = list(ax)
        if len(axes) != 3:
            raise ValueError(f"ax: expected None, one Axes or three Axes; got {len(axes)} axes")
    for axis, (picture, title) in zip(axes, panels):
        axis.imshow(picture)
        axis.set_title(title)
        axis.set_axis_off()
    anchor_axis = axes[0] if len(axes) == 1 else axes[1]
    for label, (row, col) in label_positions(np.asarray(segments), features).items():
        anchor_axis.text(col, row, str(label), color="white", ha="center", va="center", fontweight="bold",
                         bbox={"facecolor": "black", "alpha": 0.6, "pad": 1, "linewidth": 0})
    return axes[0].figure
