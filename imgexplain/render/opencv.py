"""OpenCV's colormap constants as colormaps, so that code written for ``cv2.applyColorMap`` (as
pytorch-grad-cam's ``show_cam_on_image``) draws the same colours without OpenCV.

``COLORMAP_JET`` is MATLAB's jet sampled at the 256 levels of a uint8 map, as OpenCV's table is;
the other constants are matplotlib's colormaps of the same name.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["COLORMAP_JET", "OPENCV_COLORMAPS", "opencv_colormap", "opencv_jet"]

COLORMAP_JET = 2
"""``cv2.COLORMAP_JET``."""

OPENCV_COLORMAPS = {0: "autumn", 1: "bone", 2: "jet", 3: "winter", 4: "rainbow", 5: "ocean", 6: "summer",
                    7: "spring", 8: "cool", 9: "hsv", 10: "pink", 11: "hot", 13: "magma", 14: "inferno",
                    15: "plasma", 16: "viridis", 17: "cividis", 18: "twilight", 19: "twilight_shifted",
                    20: "turbo"}
"""OpenCV's colormap constants (``cv2.COLORMAP_*``) and the colormaps they stand for."""


def opencv_jet(values: np.ndarray) -> np.ndarray:
    """RGB colours in [0, 1] of OpenCV's ``COLORMAP_JET`` for ``values`` in [0, 1]: each value is
    first quantised as ``np.uint8(255 * value)``, then coloured by MATLAB's piecewise-linear jet.

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain.render.opencv import opencv_jet
    >>> (opencv_jet(np.array([0.0, 1.0])) * 255).round().astype(int).tolist()   # dark blue, dark red
    [[0, 0, 128], [128, 0, 0]]
    """
    levels = np.floor(255 * np.asarray(values, dtype=np.float64)) / 255
    channels = [np.clip(1.5 - np.abs(4 * levels - centre), 0, 1) for centre in (3, 2, 1)]
    return np.stack(channels, axis=-1)


def opencv_colormap(code: int) -> Callable | str:
    """The colormap of OpenCV's constant ``code``: :func:`opencv_jet` for ``COLORMAP_JET``, else the
    name of matplotlib's colormap.

    Raises
    ------
    ValueError
        A code OpenCV does not define (or ``COLORMAP_PARULA``, which matplotlib lacks).

    Examples
    --------
    >>> from imgexplain.render.opencv import opencv_colormap
    >>> opencv_colormap(16)
    'viridis'
    """
    if code not in OPENCV_COLORMAPS:
        raise ValueError(f"colormap {code} is not an OpenCV colormap constant imgexplain knows; use one of "
                         f"{sorted(OPENCV_COLORMAPS)} or a matplotlib colormap")
    return opencv_jet if code == COLORMAP_JET else OPENCV_COLORMAPS[code]
