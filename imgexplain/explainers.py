"""The command line's explainer of one image: prediction, anchor and class activation maps, as a table row.

:class:`ImageExplainer` loads the model once and turns an image file (decoded once) or array into a
row of the results table, with its pictures as PNG bytes (written by the pipeline next to the table).
"""
from __future__ import annotations

import hashlib
import io
import math
import time

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


def _enlarge(array: np.ndarray, factor: int) -> np.ndarray:
    return array if factor == 1 else np.repeat(np.repeat(array, factor, axis=0), factor, axis=1)


class ImageExplainer:
    """Explain one image with ``methods`` ('anchor' and CAM methods) on the model ``load_classifier()`` loads.

    ``target`` None explains the predicted class; anchors always explain the prediction. Images of more
    than ``max_pixels`` pixels are refused (``datasets.load_image``).
    """

    def __init__(self, load_classifier, methods, *, target=None, threshold=0.95, seed=0, max_pixels=MAX_PIXELS):
        from imgexplain import AnchorImage
        from imgexplain.cam.api import CAM

        self.classifier = classifier = load_classifier()
        self.methods, self.target, self.threshold, self.max_pixels = list(methods), target, threshold, max_pixels
        self.anchor = None
        if "anchor" in self.methods:
            self.anchor = AnchorImage(classifier.predictor, classifier.input_size + (3,), segmentation_fn="slic",
                                      segmentation_kwargs=dict(SEGMENTATION_KWARGS), seed=seed)
        cam_model = classifier.cam_model if classifier.cam_model is not None else classifier.model
        self.cams = {method: CAM(cam_model, layer=None if method == "fullgrad" else classifier.cam_layer,
                                 method=method, output=classifier.cam_output, forward=classifier.cam_forward)
                     for method in self.methods if method in CAM_METHODS}
        size = min(classifier.input_size)
        self.enlarge = max(1, math.ceil(PICTURE_SIZE / size)) if size < PICTURE_SIZE else 1

    def explain(self, image) -> dict:
        from imgexplain.datasets import load_image, resize_image

        classifier = self.classifier
        pixels = load_image(image, target_size=None, max_pixels=self.max_pixels)  # a file is decoded once
        x = resize_image(pixels, classifier.input_size).astype(np.float32)
        del pixels
        probs = np.asarray(classifier.predictor(x[np.newaxis]))[0]
        ranked = classifier.top_classes(probs, probs.shape[0])
        names = {k: label for k, label, _ in ranked}
        predicted = ranked[0][0]
        explained = predicted if self.target is None else self.target
        if explained not in names:
            raise ValueError(f"target {explained} is not a class of {classifier.name}, which has "
                             f"{probs.shape[0]} classes")
        stem = f"{PICTURES}/{hashlib.sha256(x.tobytes()).hexdigest()[:16]}"
        shown = _enlarge(x.astype(np.uint8), self.enlarge)
        row = {"target": explained, "label": names[explained], "predicted": predicted,
               "top5": [{"index": k, "label": label, "p": p} for k, label, p in ranked[:5]],
               "pictures": [], "files": {}}
        self._picture(row, f"{stem}-input.png", shown, "input", f"{x.shape[1]}x{x.shape[0]} pixels")
        for method in self.methods:
            tick = time.perf_counter()
            if method == "anchor":
                self._explain_anchor(row, x, shown, stem, f"{predicted} {names[predicted]}")
            else:
                self._explain_cam(row, method, x, shown, stem, explained)
            row[f"seconds_{method}"] = time.perf_counter() - tick
        return row

    def _picture(self, row, path, array, title, caption, colormap=None):
        row["files"][path] = _png(array)
        row["pictures"].append({"path": path, "title": title, "caption": caption, "colormap": colormap})

    def _explain_anchor(self, row, x, shown, stem, predicted_name):
        from imgexplain import render

        explanation = self.anchor.explain(x, threshold=self.threshold, p_sample=P_SAMPLE, tau=TAU)
        features = [int(k) for k in explanation.data["raw"]["feature"]]
        precision, coverage = float(explanation.precision), float(explanation.coverage)
        row.update(anchor=features, precision=precision, coverage=coverage,
                   num_preds=int(explanation.data["raw"]["num_preds"]), anchor_found=explanation.success)
        segments = _enlarge(explanation.segments, self.enlarge)
        if explanation.empty_anchor:
            caption = render.EMPTY_ANCHOR_TEXT
        else:
            caption = (f"superpixel{'s' if len(features) > 1 else ''} #{', #'.join(map(str, features))}: "
                       f"precision {precision:.2f}, coverage {coverage:.2f}")
        if not explanation.success:
            caption += f" (below the threshold {self.threshold}: the best anchor found)"
        self._picture(row, f"{stem}-anchor.png", render.anchor_picture(shown, segments, features),
                      f"anchor of {predicted_name}", caption)
        self._picture(row, f"{stem}-superpixels.png", render.boundaries_picture(shown, segments),
                      "superpixels", f"{int(explanation.segments.max()) + 1} slic superpixels, numbered")

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
