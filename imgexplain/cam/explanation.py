"""The explanation that :func:`imgexplain.explain_prediction` returns."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from imgexplain.explanation import Explanation

if TYPE_CHECKING:
    from imgexplain.cam.core import CAMResult
    from imgexplain.render import Axes, Figure, Labels


class HeatmapArray(np.ndarray):
    """A 2-D heatmap in [0, 1]: a numpy array that also behaves like eli5's heatmap image.

    ``resize((width, height))`` returns a grayscale PIL image of that size (numpy's in-place
    ``ndarray.resize`` is replaced), and Jupyter shows the array as a picture. The results
    of arithmetic on it are plain arrays.

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain import HeatmapArray
    >>> heatmap = HeatmapArray([[0.0, 0.5], [1.0, 0.25]])
    >>> heatmap.resize((4, 4)).size
    (4, 4)
    >>> type(heatmap * 2).__name__
    'ndarray'
    """

    def __new__(cls, values):
        return np.asarray(values).view(cls)

    def __array_wrap__(self, array, context=None, return_scalar=False):
        array = np.asarray(array)
        return array[()] if return_scalar else array

    def to_image(self) -> Image.Image:
        """The heatmap as an 8-bit grayscale PIL image (0 is cold, 255 hot).

        Returns
        -------
        PIL.Image.Image
            Mode ``"L"``, one pixel per value.

        Examples
        --------
        >>> import numpy as np
        >>> from imgexplain import HeatmapArray
        >>> np.asarray(HeatmapArray([[0.0, 0.5, 1.0]]).to_image())
        array([[  0, 128, 255]], dtype=uint8)
        """
        return Image.fromarray(np.round(np.asarray(self) * 255).astype(np.uint8), mode="L")

    def resize(self, size: tuple[int, int], resample: int = Image.LANCZOS) -> Image.Image:
        """The heatmap as a grayscale PIL image of ``size`` (width, height), as eli5's heatmap.

        Parameters
        ----------
        size : (int, int)
            (width, height), PIL's order.
        resample : int
            A PIL resampling filter.

        Returns
        -------
        PIL.Image.Image
            Mode ``"L"``.

        Examples
        --------
        >>> from imgexplain import HeatmapArray
        >>> HeatmapArray([[0.0, 1.0]]).resize((6, 3)).size
        (6, 3)
        """
        return self.to_image().resize(tuple(size), resample=resample)

    def _repr_png_(self) -> bytes:
        import io

        buffer = io.BytesIO()
        self.to_image().save(buffer, format="png")
        return buffer.getvalue()


@dataclass(frozen=True)
class TargetExplanation:
    """One explained class: its index, the model's score for it and its heatmap (eli5's fields).

    Attributes
    ----------
    target : int
        The class index.
    score : float or None
        The model's output for that class, as it is (a probability after a softmax, a logit otherwise).
    heatmap : HeatmapArray or None
        Its map, 2-D in [0, 1].
    proba : float or None
        eli5's field for a normalised probability: None, as eli5's Keras explanations leave it; the
        model's output is in ``score``.

    Examples
    --------
    >>> from imgexplain import HeatmapArray, TargetExplanation
    >>> explained = TargetExplanation(target=3, score=0.9, heatmap=HeatmapArray([[0.0, 1.0]]))
    >>> explained, explained.proba
    (TargetExplanation(target=3, score=0.9), None)
    """

    target: int
    score: float | None = None
    heatmap: HeatmapArray | None = field(default=None, repr=False)
    proba: float | None = field(default=None, repr=False)


class CAMExplanation(Explanation):
    """A class activation map of one image, as :func:`imgexplain.explain_prediction` returns it.

    ``image`` (a PIL image), ``heatmap`` (the first target's map, 2-D in [0, 1] at the
    layer's resolution), ``targets`` (one :class:`TargetExplanation` per explained class),
    ``method`` and ``layer`` (the layer's name). ``data`` holds the same with the image
    as a uint8 array, so that :meth:`to_json` keeps everything. It is built from the
    :class:`~imgexplain.cam.core.CAMResult` of :meth:`CAM.compute <imgexplain.CAM.compute>`
    by :meth:`from_result`.

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain import CAMExplanation, CAMResult
    >>> result = CAMResult(maps=np.array([[[0.0, 1.0], [0.5, 0.5]]]), targets=np.array([7]),
    ...                    scores=np.array([2.5]), layer="conv", method="gradcam")
    >>> explanation = CAMExplanation.from_result(result, np.zeros((2, 2, 3), np.uint8), meta={})
    >>> explanation.targets
    [TargetExplanation(target=7, score=2.5)]
    >>> explanation.heatmap
    HeatmapArray([[0. , 1. ],
                  [0.5, 0.5]])
    >>> CAMExplanation.from_json(explanation.to_json()).targets[0].target
    7
    >>> explanation.image = explanation.image.convert("RGBA")  # as eli5's tutorial does
    >>> explanation.image.mode, explanation.error
    ('RGBA', '')
    """

    @classmethod
    def from_result(cls, result: CAMResult, image: np.ndarray, meta: dict) -> CAMExplanation:
        """The explanation of one image from ``result``, whose rows are the classes explained.

        Parameters
        ----------
        result : CAMResult
            What :meth:`CAM.compute <imgexplain.CAM.compute>` returned for copies of the image,
            one per class explained.
        image : ndarray
            The picture shown under the maps, ``(H, W, 3)`` uint8.
        meta : dict
            The explanation's ``meta`` (name, params, version).

        Returns
        -------
        CAMExplanation
            ``data`` holds ``image``, ``heatmap`` (the first row's map), ``targets``, ``method``
            and ``layer``.
        """
        explained = [{"target": int(target), "score": float(score), "heatmap": heatmap}
                     for target, score, heatmap in zip(result.targets, result.scores, result.maps)]
        data = {"image": image, "heatmap": result.maps[0], "targets": explained,
                "method": result.method, "layer": result.layer}
        return cls(meta=meta, data=data)

    @classmethod
    def from_error(cls, message: str, meta: dict) -> CAMExplanation:
        """An explanation that says why nothing could be explained, as eli5 returns one for an unsupported
        model: ``error`` is ``message``; no image, heatmap or targets.

        Parameters
        ----------
        message : str
            What went wrong.
        meta : dict
            The explanation's ``meta``.

        Returns
        -------
        CAMExplanation

        Examples
        --------
        >>> from imgexplain import CAMExplanation
        >>> explanation = CAMExplanation.from_error("model 'Sequential' is not supported: no layers", meta={})
        >>> explanation.error, explanation.targets, explanation.image
        ("model 'Sequential' is not supported: no layers", [], None)
        """
        return cls(meta=meta, data={"image": None, "heatmap": None, "targets": [], "method": None, "layer": None,
                                    "error": message})

    @property
    def error(self) -> str:
        """Why nothing was explained, or ``''`` (str): eli5's field, set by ``explain_prediction(...,
        errors='return')``."""
        return self.data.get("error", "")

    @property
    def image(self) -> Image.Image | None:
        """The picture under the maps (PIL.Image.Image): RGB as explained, or what was assigned.

        Assign a PIL image to lay the maps over another picture (eli5's tutorials assign
        ``expl.image = expl.image.convert('RGBA')``); modes other than L, RGB and RGBA are kept as RGBA.
        """
        picture = self.data["image"]
        return None if picture is None else Image.fromarray(np.asarray(picture, dtype=np.uint8))

    @image.setter
    def image(self, picture: Image.Image) -> None:
        if not isinstance(picture, Image.Image):
            raise TypeError(f"image must be a PIL image; got {type(picture).__name__}")
        self.data["image"] = np.asarray(picture if picture.mode in ("L", "RGB", "RGBA") else picture.convert("RGBA"))

    @property
    def heatmap(self) -> HeatmapArray | None:
        """The first target's map (HeatmapArray), 2-D in [0, 1] at the layer's resolution."""
        return None if self.data["heatmap"] is None else HeatmapArray(self.data["heatmap"])

    @property
    def targets(self) -> list[TargetExplanation]:
        """One :class:`TargetExplanation` (class, score, map) per class explained (list)."""
        return [TargetExplanation(target=int(item["target"]), score=float(item["score"]),
                                  heatmap=HeatmapArray(item["heatmap"]), proba=item.get("proba"))
                for item in self.data["targets"]]

    def plot(self, ax: Axes | None = None, labels: Labels | None = None,
             **format_kwargs: Any) -> Figure:
        """Draw the first target's map over the image with a colour bar.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Where to draw; a new figure by default.
        labels : sequence of str or dict, optional
            Class names, for the title.
        **format_kwargs
            As in :func:`imgexplain.render.format_as_image`.

        Returns
        -------
        matplotlib.figure.Figure
            See :func:`imgexplain.render.plot_cam`.
        """
        from imgexplain.render import plot_cam

        return plot_cam(self, ax=ax, labels=labels, **format_kwargs)
