"""What AnchorImage returns: the anchor explanation of one image, and the scaling of images for display."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from imgexplain.explanation import Explanation

if TYPE_CHECKING:
    from imgexplain.render import Axes, Figure


def scale_image(image: np.ndarray, scale: tuple = (0, 255)) -> np.ndarray:
    """Scale ``image`` linearly so that its minimum is ``scale[0]`` and its maximum ``scale[1]``.

    A constant image has no range to stretch and maps to ``scale[0]`` everywhere.

    Parameters
    ----------
    image : array-like
        Any shape; it is not modified.
    scale : (float, float)
        The new minimum and maximum.

    Returns
    -------
    float64 ndarray
        Of the image's shape.

    Examples
    --------
    >>> from imgexplain import scale_image
    >>> scale_image([[0.0, 0.5], [1.0, 0.25]], scale=(0, 255))
    array([[  0.  , 127.5 ],
           [255.  ,  63.75]])
    """
    image = np.asarray(image, dtype=np.float64)
    low, high = image.min(), image.max()
    if high == low:
        return np.full(image.shape, float(scale[0]))
    return (image - low) / (high - low) * (scale[1] - scale[0]) + scale[0]


class AnchorImageExplanation(Explanation):
    """An anchor explanation: ``anchor``, ``segments``, ``precision``, ``coverage`` and the ``raw`` search record.

    ``data`` has exactly the keys of alibi's: ``anchor``, ``segments``, ``precision``, ``coverage`` and
    ``raw``; they are also attributes. ``empty_anchor`` is True when the prediction holds whatever is
    perturbed; ``success`` is False when no anchor reached the precision threshold and the best one found
    is returned instead (both attributes, read from ``raw``). :meth:`AnchorImage.explain` returns it.

    Attributes
    ----------
    anchor : int ndarray
        The image scaled to 0..255 on the anchor's superpixels, 0 elsewhere (alibi's ``anchor``).
    segments : (H, W) int ndarray
        The superpixels, 0..K-1.
    precision, coverage : float
        The anchor's estimated precision and coverage.
    success, empty_anchor : bool
        ``raw['success']`` and ``raw['empty_anchor']``.
    raw : dict
        The search's record: ``feature`` (the anchor's superpixels, in the order added),
        ``precision``, ``coverage``, ``examples``, ``prediction``, the model's use (``num_preds``,
        ``model_calls``), ...

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain import AnchorImage
    >>> image = np.random.default_rng(0).random((16, 16, 3)).astype(np.float32)
    >>> def quadrants(image):  # four superpixels: 0 1 / 2 3
    ...     rows, cols = np.indices(image.shape[:2]) // 8
    ...     return 2 * rows + cols
    >>> def predictor(images):  # class 1 while the top-left quadrant keeps its texture
    ...     textured = images[:, :8, :8].std(axis=(1, 2)).min(axis=1) > 0.01
    ...     return np.stack([~textured, textured], axis=1).astype(float)
    >>> explanation = AnchorImage(predictor, image.shape, segmentation_fn=quadrants, seed=0).explain(image)
    >>> type(explanation).__name__, explanation.success, explanation.empty_anchor
    ('AnchorImageExplanation', True, False)
    >>> sorted(explanation.data), int(explanation.raw["prediction"][0])
    (['anchor', 'coverage', 'precision', 'raw', 'segments'], 1)
    """

    @classmethod
    def from_json(cls, text: str) -> "AnchorImageExplanation":
        """Rebuild an explanation saved with :meth:`to_json`; its covered examples are rebuilt from their
        masks (without background images, which JSON does not keep: then only their masks come back).

        Parameters
        ----------
        text : str
            What :meth:`to_json` returned.

        Returns
        -------
        AnchorImageExplanation

        Raises
        ------
        json.JSONDecodeError, KeyError
            `text` is not JSON, or not an explanation's.
        """
        from imgexplain.anchors.examples import CoveredExamples, ExampleSource

        explanation = super().from_json(text)
        params, raw = explanation.meta.get("params", {}), explanation.data.get("raw", {})
        if params.get("images_background") or "instance" not in raw:
            return explanation
        instance = np.asarray(raw["instance"])
        source = ExampleSource(instance if instance.ndim == 3 else instance[..., np.newaxis],
                               explanation.data["segments"], None, instance.shape, params.get("dtype", "float32"))
        for step in raw.get("examples", []):
            for examples in step.values():
                if isinstance(examples, CoveredExamples):
                    examples.attach(source)
        return explanation

    @property
    def success(self) -> bool:
        """False when no anchor reached the precision threshold and the best one found is returned (bool)."""
        return bool(self.data["raw"]["success"])

    @property
    def empty_anchor(self) -> bool:
        """True when the prediction holds whatever is perturbed: nothing needs to be kept (bool)."""
        return bool(self.data["raw"]["empty_anchor"])

    @property
    def alternatives(self) -> list[dict]:
        """The other anchors of the anchor's size that keep the prediction as well, certified or nearly.

        The anchor is often not unique: on a photo of a cat, each of several superpixels alone may keep the
        prediction. The search checked these on the same samples and at the same confidence level as the anchor
        (its bounds hold for every candidate of the step), most certain first.

        Returns
        -------
        list of dict
            One per alternative: ``feature`` (superpixel ids, in the order added), ``precision`` (its mean at
            the check's last look), ``coverage``, ``lower`` and ``upper`` (the check's bounds), ``n_samples`` (the
            look's sample count) and ``certified`` (True when its lower bound exceeds threshold - epsilon_stop,
            as the anchor's does; False when its mean reached the threshold but the bound did not yet). Empty
            for an empty anchor and when no anchor passed.

        Examples
        --------
        >>> import numpy as np
        >>> from imgexplain import AnchorImage
        >>> image = np.random.default_rng(0).random((16, 16, 3)).astype(np.float32)
        >>> def quadrants(image):  # four superpixels: 0 1 / 2 3
        ...     rows, cols = np.indices(image.shape[:2]) // 8
        ...     return 2 * rows + cols
        >>> def predictor(images):  # class 1 while the top-left or the bottom-right quadrant keeps its texture
        ...     textured = np.stack([images[:, :8, :8], images[:, 8:, 8:]]).std(axis=(2, 3)).min(axis=2) > 0.01
        ...     return np.stack([~textured.any(axis=0), textured.any(axis=0)], axis=1).astype(float)
        >>> explanation = AnchorImage(predictor, image.shape, segmentation_fn=quadrants, seed=0).explain(image)
        >>> explanation.raw["feature"], [alternative["feature"] for alternative in explanation.alternatives]
        ([0], [[3]])
        """
        return self.data["raw"].get("alternatives", [])

    def plot(self, ax: Axes | Sequence[Axes] | None = None) -> Figure:
        """The image, the anchor and the superpixel boundaries side by side (a matplotlib figure).

        Parameters
        ----------
        ax : None, matplotlib Axes or a sequence of three
            As in :func:`imgexplain.render.plot_anchor`.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from imgexplain.render import plot_anchor

        return plot_anchor(self, ax=ax)
