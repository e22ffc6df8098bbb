"""Pictures of anchors: the anchor's superpixels, the segmentation's boundaries, and the anchor's plot."""
from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure

from imgexplain._checks import check_finite
from imgexplain.render.figures import Labels, class_name, new_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes

EMPTY_ANCHOR_TEXT = "empty anchor: the prediction holds whatever is perturbed"
_ANCHOR_OUTLINE = (220, 20, 60)
_FADED_GREY = 235.0
MAX_ALTERNATIVES_SHOWN = 6


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
    superpixels, and below (a new figure only) a row of the other anchors of the same size that keep the
    prediction (``raw['alternatives']``, at most ``MAX_ALTERNATIVES_SHOWN``).

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
    alternatives = raw.get("alternatives", [])[:MAX_ALTERNATIVES_SHOWN]
    if ax is None and alternatives:
        figure = new_figure(figsize=(12, 7.2), layout="constrained")
        top, bottom = figure.subfigures(2, 1, height_ratios=[4.4, 2.8])
        axes = top.subplots(1, 3)
        _plot_alternatives(bottom, image, segments, alternatives)
    elif ax is None:
        figure = new_figure(figsize=(12, 4.4), layout="constrained")
        axes = figure.subplots(1, 3)
    elif isinstance(ax, Axes):
        axes, panels, figure = [ax], panels[1:2], ax.figure
    else:
        axes = list(ax)
        if len(axes) != 3:
            raise ValueError(f"ax: expected None, one Axes or three Axes; got {len(axes)} axes")
        figure = axes[0].figure
    for axis, (picture, title) in zip(axes, panels):
        axis.imshow(picture)
        axis.set_title(title)
        axis.set_axis_off()
    anchor_axis = axes[0] if len(axes) == 1 else axes[1]
    for label, (row, col) in label_positions(np.asarray(segments), features).items():
        anchor_axis.text(col, row, str(label), color="white", ha="center", va="center", fontweight="bold",
                         bbox={"facecolor": "black", "alpha": 0.6, "pad": 1, "linewidth": 0})
    return figure


def _plot_alternatives(figure, image: np.ndarray, segments: np.ndarray, alternatives: list[dict]) -> None:
    """A row of small anchor pictures, one per alternative anchor of the explanation."""
    figure.suptitle("other anchors of the same size that keep the prediction")
    for axis, alternative in zip(np.atleast_1d(figure.subplots(1, max(len(alternatives), 3))), alternatives):
        state = "" if alternative["certified"] else ", nearly"
        axis.imshow(anchor_picture(image, segments, alternative["feature"]))
        axis.set_title(f"{alternative['feature']}: precision {alternative['precision']:.2f}{state}", fontsize=9)
    for axis in figure.axes:
        axis.set_axis_off()
