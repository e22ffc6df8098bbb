"""Heatmap arrays as PIL images, as eli5's ``heatmap_to_image`` and ``expand_heatmap``: grayscale, RGB and RGBA."""
from __future__ import annotations

import numpy as np
from PIL import Image

# The PIL mode of a heatmap with this many channels (None: a 2-D heatmap).
_MODES = {None: "L", 3: "RGB", 4: "RGBA"}


def heatmap_to_image(heatmap: np.ndarray) -> Image.Image:
    """A heatmap of values in [0, 1] as an 8-bit PIL image, one pixel per value (eli5's function).

    A 2-D heatmap becomes a grayscale (``L``) image, an (h, w, 3) one ``RGB`` and an (h, w, 4) one ``RGBA``
    (a coloured heatmap whose alpha is its opacity). Values are scaled to 0..255 and rounded.

    Parameters
    ----------
    heatmap : ndarray
        (h, w), (h, w, 3) or (h, w, 4) numbers in [0, 1].

    Returns
    -------
    PIL.Image.Image
        Of size (w, h).

    Raises
    ------
    TypeError
        `heatmap` is not a numpy array of numbers.
    ValueError
        Another shape, no values, or a value outside [0, 1] (NaN included).

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain import heatmap_to_image
    >>> picture = heatmap_to_image(np.array([[0.0, 0.5, 1.0]]))
    >>> picture.mode, picture.size, np.asarray(picture).tolist()
    ('L', (3, 1), [[0, 128, 255]])
    >>> heatmap_to_image(np.zeros((2, 3, 4))).mode
    'RGBA'
    """
    if not isinstance(heatmap, np.ndarray):
        raise TypeError(f"heatmap must be a numpy array; got {type(heatmap).__name__}")
    if heatmap.dtype.kind not in "biuf":
        raise TypeError(f"heatmap must hold numbers in [0, 1]; got dtype {heatmap.dtype}")
    channels = heatmap.shape[2] if heatmap.ndim == 3 else None
    if heatmap.ndim not in (2, 3) or channels not in _MODES:
        raise ValueError(f"heatmap must be (h, w) grayscale, (h, w, 3) RGB or (h, w, 4) RGBA; got shape "
                         f"{heatmap.shape}")
    values = heatmap.astype(np.float64)
    if values.size == 0 or not np.all((values >= 0) & (values <= 1)):
        found = f"minimum {values.min()} and maximum {values.max()}" if values.size else "no values"
        raise ValueError(f"heatmap must hold values in [0, 1]; got {found}")
    return Image.fromarray(np.round(values * 255).astype(np.uint8), mode=_MODES[channels])


def expand_heatmap(heatmap: np.ndarray, image: Image.Image, resampling_filter: int = Image.LANCZOS) -> Image.Image:
    """``heatmap`` as a PIL image (see :func:`heatmap_to_image`) resized to ``image`` (eli5's function).

    Parameters
    ----------
    heatmap : ndarray
        (h, w), (h, w, 3) or (h, w, 4) numbers in [0, 1].
    image : PIL.Image.Image
        The picture whose size the heatmap takes.
    resampling_filter : int
        A PIL resampling filter.

    Returns
    -------
    PIL.Image.Image
        Of the image's size, in the heatmap's mode (L, RGB or RGBA).

    Raises
    ------
    TypeError
        `image` is not a PIL image, or as in :func:`heatmap_to_image`.
    ValueError
        As in :func:`heatmap_to_image`.

    Examples
    --------
    >>> import numpy as np
    >>> from PIL import Image
    >>> from imgexplain import expand_heatmap
    >>> expanded = expand_heatmap(np.eye(2), Image.new("RGB", (8, 6)), Image.NEAREST)
    >>> expanded.size, np.asarray(expanded)[0].tolist()
    ((8, 6), [255, 255, 255, 255, 0, 0, 0, 0])
    """
    if not isinstance(image, Image.Image):
        raise TypeError(f"image must be a PIL image; got {type(image).__name__}")
    return heatmap_to_image(heatmap).resize(image.size, resample=resampling_filter)
