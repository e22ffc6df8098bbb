"""Matplotlib figures of explanations that Jupyter shows once, and the class activation map's plot."""
from __future__ import annotations

import io
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Union

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from imgexplain._checks import check_int
from imgexplain.render.heatmaps import format_as_image, overlay_colormap, overlay_heatmap, resolve_colormap

if TYPE_CHECKING:
    from matplotlib.axes import Axes

# Class names by index.
Labels = Union[Sequence[str], Mapping[int, str]]
DISPLAY_SIDE = 224  # small inputs are drawn enlarged to at least this many pixels on their short side


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


def enlarged(picture: np.ndarray, min_side: int = DISPLAY_SIDE) -> np.ndarray:
    """``picture`` (an image or a label image) enlarged by the smallest whole factor that makes its short
    side at least ``min_side``, each pixel a square block (nearest neighbour: no blurring, labels kept).

    Parameters
    ----------
    picture : (H, W) or (H, W, C) ndarray
    min_side : int

    Returns
    -------
    ndarray
        ``picture`` itself when it is large enough.

    Raises
    ------
    TypeError, ValueError
        `min_side` is not a positive int, or `picture` has fewer than two dimensions.

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain.render import enlarged
    >>> enlarged(np.array([[1, 2]]), min_side=2)
    array([[1, 1, 2, 2],
           [1, 1, 2, 2]])
    """
    min_side = check_int(min_side, "min_side", low=1)
    picture = np.asarray(picture)
    if picture.ndim < 2:
        raise ValueError(f"picture: expected an (H, W) or (H, W, C) array; got shape {picture.shape}")
    factor = max(1, -(-min_side // max(1, min(picture.shape[:2]))))
    return picture if factor == 1 else np.repeat(np.repeat(picture, factor, axis=0), factor, axis=1)


def plot_cam(explanation: Any, ax: Axes | None = None, labels: Labels | None = None,
             **format_kwargs: Any) -> Figure:
    """Draw a class activation map explanation: its first target's map over the image, with a colour bar
    that shows the overlay's colours and opacity. Images smaller than 224 pixels are enlarged by a whole
    factor without blurring (:func:`enlarged`), the map resized smoothly over them.

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
    colormap = resolve_colormap(format_kwargs.get("colormap", matplotlib.cm.viridis))
    picture = format_as_image(explanation, **format_kwargs)
    if explanation.data["targets"] and min(picture.size) < DISPLAY_SIDE:  # small inputs: enlarged, not blurred
        image = Image.fromarray(enlarged(np.asarray(explanation.image)))
        picture = overlay_heatmap(image, np.asarray(explanation.targets[0].heatmap), **format_kwargs)
    ax.imshow(picture, interpolation="nearest")
    ax.set_axis_off()
    if explanation.data["targets"]:
        first = explanation.targets[0]
        ax.set_title(f"{explanation.method} at {explanation.layer}: {class_name(first.target, labels)} "
                     f"(score {first.score:.3g})")
    if isinstance(colormap, matplotlib.colors.Colormap):  # the bar shows the overlay's colours and opacity
        bar = overlay_colormap(colormap, format_kwargs.get("alpha_limit", 0.65))
        mappable = matplotlib.cm.ScalarMappable(norm=matplotlib.colors.Normalize(0, 1), cmap=bar)
        figure.colorbar(mappable, ax=ax, fraction=0.046, pad=0.04, label="relevance (transparent: none)")
    return figure


# --- anchor and superpixel pictures ---------------------------------------------------------------------
