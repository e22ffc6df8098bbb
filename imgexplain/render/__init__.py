"""Pictures of explanations (Pillow and matplotlib colormaps): the only package that imports matplotlib.

Heatmaps: :func:`colorize_heatmap` turns a [0, 1] map into RGBA whose opacity follows the
heat, :func:`overlay_heatmap` lays it over an image, and :func:`format_as_image` does both
for a class activation map explanation, as ``eli5.format_as_image`` does;
:func:`show_cam_on_image` blends a map into an image as pytorch-grad-cam's function of that name;
:func:`heatmap_to_image` and :func:`expand_heatmap` turn grayscale, RGB or RGBA heatmaps into PIL images, as eli5's.
Plots are pyplot figures (``plt.show()`` and ``plt.savefig`` see them) that Jupyter shows once
(:mod:`~imgexplain.render.figures`); anchors are drawn by :mod:`~imgexplain.render.anchors`.
"""
from imgexplain.render.anchors import (EMPTY_ANCHOR_TEXT, anchor_picture, boundaries_picture, label_positions,
                                       plot_anchor)
from imgexplain.render.figures import (ExplanationFigure, Labels, class_name, enlarged, figure_png, new_figure,
                                       plot_cam)
from imgexplain.render.heatmap_images import expand_heatmap, heatmap_to_image
from imgexplain.render.heatmaps import (Colormap, colorize_heatmap, colormap_colors, format_as_image,
                                        overlay_colormap, overlay_heatmap, resolve_colormap, show_cam_on_image)

__all__ = [
    "EMPTY_ANCHOR_TEXT",
    "Colormap",
    "ExplanationFigure",
    "Labels",
    "anchor_picture",
    "boundaries_picture",
    "class_name",
    "colorize_heatmap",
    "colormap_colors",
    "enlarged",
    "expand_heatmap",
    "figure_png",
    "format_as_image",
    "heatmap_to_image",
    "label_positions",
    "new_figure",
    "overlay_colormap",
    "overlay_heatmap",
    "plot_anchor",
    "plot_cam",
    "resolve_colormap",
    "show_cam_on_image",
]
