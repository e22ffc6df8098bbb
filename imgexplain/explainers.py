"""The command line's explainer of one image: prediction, anchor and class activation maps, as a table row.

:class:`ImageExplainer` loads the model once and turns an image file (decoded once) or array into a
row of the results table, with its pictures as PNG bytes (written by the pipeline next to the table).
"""
from __future__ import annotations

import hashlib
import io
import math
import re
import time
from functools import partial
from pathlib import Path

import numpy as np

from imgexplain.cam.methods import METHODS as CAM_METHODS
from imgexplain.datasets import MAX_PIXELS

# Seed 000's settings: slic superpixels, and the anchor search arguments.
SEGMENTATION_KWARGS = {"n_segments": 15, "compactness": 20, "sigma": 0.5, "start_label": 0}
P_SAMPLE = 0.5
TAU = 0.25
HEATMAP_COLORMAP = "viridis"
PICTURES = "pictures"
PICTURE_SIZE = 224  # pictures of smaller inputs are enlarged (nearest neighbour) to about this size
TOP_K = 5


def row_schema(methods):
    """The pyarrow schema of an :class:`ImageExplainer` row for ``methods``."""
    import pyarrow as pa

    picture = pa.struct([("path", pa.string()), ("title", pa.string()), ("caption", pa.string()),
                         ("colormap", pa.string())])
    top = pa.struct([("index", pa.int64()), ("label", pa.string()), ("p", pa.float64())])
    fields = [("target", pa.int64()), ("label", pa.string()), ("predicted", pa.int64()), ("top5", pa.list_(top)),
              ("anchor", pa.list_(pa.int64())), ("precision", pa.float64()), ("coverage", pa.float64()),
              ("num_preds", pa.int64()), ("anchor_found", pa.bool_())]
    fields += [(method, pa.list_(pa.list_(pa.float32()))) for method in methods if method != "anchor"]
    fields += [("layer", pa.string()), ("pictures", pa.list_(picture))]
    fields += [(f"seconds_{method}", pa.float64()) for method in methods]
    return pa.schema(fields)


def layer_title(name: str) -> str:
    """A layer's name as a reader would say it: '_head_activation' -> 'head activation'."""
    return " ".join(name.replace(".", " ").replace("_", " ").split()) or name


def _png(array) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    picture = array if isinstance(array, Image.Image) else Image.fromarray(np.asarray(array, dtype=np.uint8))
    picture.convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def display_size(original_hw, input_hw) -> tuple[int, int]:
    """The pictures' (height, width): the input's aspect ratio, as many pixels as the model's input
    (enlarged by a whole factor to at least :data:`PICTURE_SIZE` on its short side).

    Examples
    --------
    >>> from imgexplain.explainers import display_size
    >>> display_size((28, 28), (28, 28)), display_size((300, 600), (224, 224))
    ((224, 224), (158, 318))
    """
    factor = max(1, math.ceil(PICTURE_SIZE / min(input_hw)))
    area = input_hw[0] * input_hw[1] * factor * factor
    height = max(1, round(math.sqrt(area * original_hw[0] / original_hw[1])))
    return height, max(1, round(area / height))


def _resize_pixels(pixels: np.ndarray, size) -> np.ndarray:
    """Shrink smoothly (bilinear, antialiased); enlarge without blurring (nearest neighbour)."""
    from imgexplain.datasets import resize_image

    if size[0] * size[1] < pixels.shape[0] * pixels.shape[1]:
        return resize_image(pixels, size)
    return _resize_labels(pixels, size)


def _resize_labels(labels: np.ndarray, size) -> np.ndarray:
    """Nearest-neighbour resizing (labels keep their values)."""
    rows = np.arange(size[0]) * labels.shape[0] // size[0]
    cols = np.arange(size[1]) * labels.shape[1] // size[1]
    return labels[rows[:, None], cols[None, :]]


def picture_stem(image, x: np.ndarray) -> str:
    """``pictures/NAME-HASH``: the input file's name (letters, digits, '.', '_', '-'; none for an array) and
    a short hash of the model's input.

    Examples
    --------
    >>> import numpy as np
    >>> from pathlib import Path
    >>> from imgexplain.explainers import picture_stem
    >>> picture_stem(Path("holiday photos/cat (1).jpg"), np.zeros(3))[:len("pictures/cat-1-")]
    'pictures/cat-1-'
    """
    is_path = isinstance(image, (str, Path))
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(image).stem).strip("-.")[:40] if is_path else ""
    digest = hashlib.sha256(x.tobytes()).hexdigest()[:12]
    return f"{PICTURES}/{name}-{digest}" if name else f"{PICTURES}/{digest}"


def _label_column(predictor, k: int, images):
    """The probability of label ``k`` as one sigmoid column: the anchor explains 'label k present'."""
    return np.asarray(predictor(images))[:, [k]]


class ImageExplainer:
    """Explain one image with ``methods`` ('anchor' and CAM methods) on the model ``load_classifier()`` loads.

    ``target`` None explains the predicted class; anchors explain the prediction, or, for a multi-label
    classifier (``classifier.multilabel``), 'the explained label is present'. Images of more than
    ``max_pixels`` pixels are refused (``datasets.load_image``). Pictures keep the input's aspect ratio.
    """

    def __init__(self, load_classifier, methods, *, target=None, threshold=0.95, seed=0, max_pixels=MAX_PIXELS,
                 top_k=TOP_K, layer=None, p_sample=P_SAMPLE, segmentation="slic", segmentation_kwargs=None,
                 verbose=False):
        from imgexplain import AnchorImage
        from imgexplain.cam.api import CAM

        self.classifier = classifier = load_classifier()
        self.methods, self.target, self.threshold, self.max_pixels = list(methods), target, threshold, max_pixels
        self.top_k, self.p_sample, self.verbose = top_k, p_sample, verbose
        self.segmentation = segmentation
        self.anchor = None
        if "anchor" in self.methods:
            kwargs = dict(SEGMENTATION_KWARGS) if segmentation_kwargs is None else dict(segmentation_kwargs)
            self.anchor = AnchorImage(classifier.predictor, classifier.input_size + (3,),
                                      segmentation_fn=segmentation, segmentation_kwargs=kwargs or None, seed=seed)
        cam_model = classifier.cam_model if classifier.cam_model is not None else classifier.model
        cam_layer = classifier.cam_layer if layer is None else layer
        self.cams = {method: CAM(cam_model, layer=None if method == "fullgrad" else cam_layer,
                                 method=method, output=classifier.cam_output, forward=classifier.cam_forward,
                                 verbose=verbose)
                     for method in self.methods if method in CAM_METHODS}

    def explain(self, image) -> dict:
        from imgexplain.datasets import load_image, resize_image

        classifier = self.classifier
        pixels = load_image(image, target_size=None, max_pixels=self.max_pixels)  # a file is decoded once
        x = resize_image(pixels, classifier.input_size).astype(np.float32)
        size = display_size(pixels.shape[:2], classifier.input_size)
        shown = _resize_pixels(pixels.astype(np.uint8), size)
        del pixels
        probs = np.asarray(classifier.predictor(x[np.newaxis]))[0]
        ranked = classifier.top_classes(probs, probs.shape[0])
        names = {k: label for k, label, _ in ranked}
        predicted = ranked[0][0]
        explained = predicted if self.target is None else self.target
        if explained not in names:
            raise ValueError(f"target {explained} is not a class of {classifier.name}, which has "
                             f"{probs.shape[0]} classes")
        stem = picture_stem(image, x)
        row = {"target": explained, "label": names[explained], "predicted": predicted,
               "top5": [{"index": k, "label": label, "p": p} for k, label, p in ranked[:self.top_k]],
               "pictures": [], "files": {}}
        self._picture(row, f"{stem}-input.png", shown, "input",
                      f"model input {x.shape[1]}x{x.shape[0]} pixels, shown at the image's aspect ratio")
        for method in self.methods:
            tick = time.perf_counter()
            if method == "anchor":
                if self.classifier.multilabel:
                    self.anchor.reset_predictor(partial(_label_column, classifier.predictor, explained))
                    state = "present" if probs[explained] >= 0.5 else "absent"
                    anchored = f"label {explained} {names[explained]} {state}"
                else:
                    anchored = f"{predicted} {names[predicted]}"
                self._explain_anchor(row, x, shown, stem, anchored)
            else:
                self._explain_cam(row, method, x, shown, stem, explained)
            row[f"seconds_{method}"] = time.perf_counter() - tick
        return row

    def _picture(self, row, path, array, title, caption, colormap=None):
        row["files"][path] = _png(array)
        row["pictures"].append({"path": path, "title": title, "caption": caption, "colormap": colormap})

    def _explain_anchor(self, row, x, shown, stem, predicted_name):
        from imgexplain import render

        explanation = self.anchor.explain(x, threshold=self.threshold, p_sample=self.p_sample, tau=TAU,
                                          verbose=self.verbose)
        features = [int(k) for k in explanation.raw["feature"]]
        precision, coverage = float(explanation.precision), float(explanation.coverage)
        success = bool(getattr(explanation, "success", explanation.raw.get("success")))
        row.update(anchor=features, precision=precision, coverage=coverage,
                   num_preds=int(explanation.raw["num_preds"]), anchor_found=success)
        segments = _resize_labels(explanation.segments, shown.shape[:2])
        if not features:
            caption = render.EMPTY_ANCHOR_TEXT
        else:
            caption = (f"superpixel{'s' if len(features) > 1 else ''} #{', #'.join(map(str, features))} "
                       f"({len(features)} of {int(explanation.segments.max()) + 1}; hatched: may be perturbed): "
                       f"precision {precision:.2f}, coverage {coverage:.2f}")
        if not success:
            caption += f" (below the threshold {self.threshold}: the best anchor found)"
        self._picture(row, f"{stem}-anchor.png", render.anchor_picture(shown, segments, features),
                      f"anchor of {predicted_name}", caption)
        self._picture(row, f"{stem}-superpixels.png", render.boundaries_picture(shown, segments),
                      "superpixels", f"{int(explanation.segments.max()) + 1} {self.segmentation} superpixels, "
                                     "numbered")

    def _explain_cam(self, row, method, x, shown, stem, explained):
        from imgexplain import render

        result = self.cams[method].compute(self.classifier.preprocess(x[np.newaxis]), targets=[explained])
        heatmap = np.asarray(result.maps[0], dtype=np.float32)
        row[method] = heatmap.tolist()
        row["layer"] = str(result.layer)
        overlay = render.overlay_heatmap(shown, heatmap.astype(np.float64), colormap=HEATMAP_COLORMAP)
        self._picture(row, f"{stem}-{method.replace('+', 'p')}.png", overlay, method,
                      f"layer {layer_title(str(result.layer))}, {heatmap.shape[0]}x{heatmap.shape[1]} map",
                      colormap=HEATMAP_COLORMAP)
