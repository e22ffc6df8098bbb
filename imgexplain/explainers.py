"""The command line's explainer of one image: prediction, anchor and class activation maps, as a table row.

:class:`ImageExplainer` loads the model once and turns an image file (decoded once) or array into a
row of the results table, with its pictures as PNG bytes (written by the pipeline next to the table).
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import logging
import math
import time

import numpy as np

from imgexplain.cam.methods import GRADIENT_METHODS
from imgexplain.cam.methods import METHODS as CAM_METHODS
from imgexplain.datasets import MAX_PIXELS

# Seed 000's settings: slic superpixels, and the anchor search arguments.
SEGMENTATION_KWARGS = {"n_segments": 15, "compactness": 20, "sigma": 0.5, "start_label": 0}
P_SAMPLE = 0.5
TAU = 0.25
HEATMAP_COLORMAP = "viridis"
PICTURES = "pictures"
PICTURE_KINDS = ("png", "jpeg", "none")
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


def encode_picture(array, kind: str) -> bytes:
    """``array`` (uint8 pixels) as the bytes of a ``kind`` ('png' or 'jpeg') file.

    PNG is written at zlib level 1: a few times faster than Pillow's default, and a little larger.
    """
    from PIL import Image

    buffer = io.BytesIO()
    picture = array if isinstance(array, Image.Image) else Image.fromarray(np.asarray(array, dtype=np.uint8))
    if kind == "png":
        picture.convert("RGB").save(buffer, format="PNG", compress_level=1)
    else:
        picture.convert("RGB").save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def encoded(row: dict) -> dict:
    """``row`` with its ``'files'`` encoded: each deferred picture (a callable) replaced by its bytes."""
    row["files"] = {path: data() if callable(data) else data for path, data in row.get("files", {}).items()}
    return row


def _enlarge(array: np.ndarray, factor: int) -> np.ndarray:
    return array if factor == 1 else np.repeat(np.repeat(array, factor, axis=0), factor, axis=1)


class _RecordedOutputs:
    """A CAM target that also keeps the output rows of the first ``n`` images: the prediction from the
    CAM's own forward pass. It explains ``target``, or each image's top class when ``target`` is None."""

    def __init__(self, n: int, target: int | None):
        self.n, self.target, self.rows = n, target, []

    def __call__(self, output):
        from imgexplain.backends import tensor_backend

        backend = tensor_backend(output)
        row = np.asarray(output if backend is None else backend.tensor_numpy(output), dtype=np.float64)
        if len(self.rows) < self.n:
            self.rows.append(row)
        return output[..., int(np.argmax(row)) if self.target is None else self.target]


class ImageExplainer:
    """Explain images with ``methods`` ('anchor' and CAM methods) on the model ``load_classifier()`` loads.

    ``target`` None explains the predicted class; anchors always explain the prediction. Images of more
    than ``max_pixels`` pixels are refused (``datasets.load_image``). ``pictures`` is 'png', 'jpeg' or
    'none'. :meth:`explain` takes one image; :meth:`load` and :meth:`explain_batch` split the same work
    so that a stream decodes ahead and computes the CAMs of a batch in one forward and backward pass.
    """

    def __init__(self, load_classifier, methods, *, target=None, threshold=0.95, seed=0, max_pixels=MAX_PIXELS,
                 pictures="png"):
        from imgexplain import AnchorImage
        from imgexplain.cam.api import CAM

        self.classifier = classifier = load_classifier()
        self.methods, self.target, self.threshold, self.max_pixels = list(methods), target, threshold, max_pixels
        if pictures not in PICTURE_KINDS:
            raise ValueError(f"pictures must be one of {', '.join(PICTURE_KINDS)}; got {pictures!r}")
        self.pictures = pictures
        self.anchor = None
        if "anchor" in self.methods:
            self.anchor = AnchorImage(classifier.predictor, classifier.input_size + (3,), segmentation_fn="slic",
                                      segmentation_kwargs=dict(SEGMENTATION_KWARGS), seed=seed)
        cam_model = classifier.cam_model if classifier.cam_model is not None else classifier.model
        self.cams = {method: CAM(cam_model, layer=None if method == "fullgrad" else classifier.cam_layer,
                                 method=method, output=classifier.cam_output, forward=classifier.cam_forward)
                     for method in self.methods if method in CAM_METHODS}
        # The prediction comes from the first gradient method's own forward pass (Score-CAM's and
        # Ablation-CAM's further passes would call a recording target on other images).
        self.predicting = next((method for method in self.cams if method in GRADIENT_METHODS + ("fullgrad",)), None)
        self.report_progress = None  # a callable of one line: the anchor search's rounds are shown with it
        size = min(classifier.input_size)
        self.enlarge = max(1, math.ceil(PICTURE_SIZE / size)) if size < PICTURE_SIZE else 1

    def load(self, image) -> np.ndarray:
        """The image (a file, decoded once, or an array) at the model's input size, float32 0..255."""
        from imgexplain.datasets import load_image, resize_image

        pixels = load_image(image, target_size=None, max_pixels=self.max_pixels)
        return resize_image(pixels, self.classifier.input_size).astype(np.float32)

    def explain(self, image) -> dict:
        """One image's row, its pictures encoded (``row['files']``: {relative path: bytes})."""
        row = self.explain_batch([self.load(image)])[0]
        if isinstance(row, Exception):
            raise row
        return encoded(row)

    def explain_batch(self, images: list) -> list:
        """The rows of ``images`` (from :meth:`load`), or each image's exception in its place.

        The CAMs of the batch come from one forward and backward pass per method, and the prediction
        from the first one's forward pass; pictures stay deferred (callables in ``row['files']``, see
        :func:`encoded`). When the batch fails as a whole, its images are explained one by one.
        """
        x = np.stack(images)
        try:
            probs, maps = self._batch_cams(x)
        except Exception as error:
            if len(images) == 1:
                return [error]
            return [row for image in images for row in self.explain_batch([image])]
        rows = []
        for n in range(len(images)):
            try:
                rows.append(self._row(x[n], probs[n], {method: (result.maps[n], result.layer)
                                                       for method, result in maps.items()}))
            except Exception as error:
                rows.append(error)
        return rows

    def _batch_cams(self, x):
        from imgexplain.classes import probabilities

        classifier, maps = self.classifier, {}
        inputs = classifier.preprocess(x) if self.cams else None
        if self.predicting is not None:
            recorder = _RecordedOutputs(len(x), self.target)
            maps[self.predicting] = self.cams[self.predicting].compute(inputs, targets=recorder)
            probs = probabilities(np.stack(recorder.rows))
        else:
            probs = np.asarray(classifier.predictor(x))
        explained = probs.argmax(axis=1) if self.target is None else np.full(len(x), self.target)
        if self.target is not None and self.target >= probs.shape[1]:
            raise ValueError(f"target {self.target} is not a class of {classifier.name}, which has "
                             f"{probs.shape[1]} classes")
        for method in self.cams:
            if method not in maps:
                maps[method] = self.cams[method].compute(inputs, targets=[int(k) for k in explained])
        return probs, maps

    def _row(self, x, probs, maps) -> dict:
        ranked = self.classifier.top_classes(probs, probs.shape[0])
        names = {k: label for k, label, _ in ranked}
        predicted = ranked[0][0]
        explained = predicted if self.target is None else self.target
        stem = f"{PICTURES}/{hashlib.sha256(x.tobytes()).hexdigest()[:16]}"
        shown = _enlarge(x.astype(np.uint8), self.enlarge)
        row = {"target": explained, "label": names[explained], "predicted": predicted,
               "top5": [{"index": k, "label": label, "p": p} for k, label, p in ranked[:5]],
               "pictures": [], "files": {}}
        self._picture(row, f"{stem}-input", lambda: shown, "input", f"{x.shape[1]}x{x.shape[0]} pixels")
        for method in self.methods:
            tick = time.perf_counter()
            if method == "anchor":
                self._explain_anchor(row, x, shown, stem, f"{predicted} {names[predicted]}")
            else:
                self._cam_row(row, method, *maps[method], shown, stem)
            row[f"seconds_{method}"] = time.perf_counter() - tick
        return row

    def _picture(self, row, stem, draw, title, caption, colormap=None):
        """A picture of the row, drawn and encoded later (``draw()`` gives its uint8 pixels)."""
        if self.pictures == "none":
            return
        path = f"{stem}.{'jpg' if self.pictures == 'jpeg' else 'png'}"
        row["files"][path] = functools.partial(_draw_and_encode, draw, self.pictures)
        row["pictures"].append({"path": path, "title": title, "caption": caption, "colormap": colormap})

    def _explain_anchor(self, row, x, shown, stem, predicted_name):
        from imgexplain import render

        with _anchor_rounds(self.report_progress) as verbose:
            explanation = self.anchor.explain(x, threshold=self.threshold, p_sample=P_SAMPLE, tau=TAU, verbose=verbose)
        features = [int(k) for k in explanation.data["raw"]["feature"]]
        precision, coverage = float(explanation.precision), float(explanation.coverage)
        row.update(anchor=features, precision=precision, coverage=coverage,
                   num_preds=int(explanation.data["raw"]["num_preds"]), anchor_found=bool(explanation.data["success"]))
        segments = _enlarge(explanation.segments, self.enlarge)
        if explanation.data["empty_anchor"]:
            caption = render.EMPTY_ANCHOR_TEXT
        else:
            caption = (f"superpixel{'s' if len(features) > 1 else ''} #{', #'.join(map(str, features))}: "
                       f"precision {precision:.2f}, coverage {coverage:.2f}")
        if not explanation.data["success"]:
            caption += f" (below the threshold {self.threshold}: the best anchor found)"
        self._picture(row, f"{stem}-anchor", lambda: render.anchor_picture(shown, segments, features),
                      f"anchor of {predicted_name}", caption)
        self._picture(row, f"{stem}-superpixels", lambda: render.boundaries_picture(shown, segments),
                      "superpixels", f"{int(explanation.segments.max()) + 1} slic superpixels, numbered")

    def _cam_row(self, row, method, heatmap, layer, shown, stem):
        from imgexplain import render

        heatmap = np.asarray(heatmap, dtype=np.float32)
        row[method] = heatmap.tolist()
        row["layer"] = str(layer)
        self._picture(row, f"{stem}-{method.replace('+', 'p')}",
                      lambda: render.overlay_heatmap(shown, heatmap.astype(np.float64), colormap=HEATMAP_COLORMAP),
                      method, f"layer {layer_title(str(layer))}, {heatmap.shape[0]}x{heatmap.shape[1]} map",
                      colormap=HEATMAP_COLORMAP)


@contextlib.contextmanager
def _anchor_rounds(report):
    """True while the anchor search's round lines (its verbose log) go to ``report``; False without one."""
    if report is None:
        yield False
        return
    from imgexplain.anchors.image import PROGRESS_LOGGER

    handler = _Forward(report)
    PROGRESS_LOGGER.addHandler(handler)  # so that verbose=True writes nothing else
    try:
        yield True
    finally:
        PROGRESS_LOGGER.removeHandler(handler)


class _Forward(logging.Handler):
    def __init__(self, report):
        super().__init__()
        self.report = report

    def emit(self, record):
        self.report(f"anchor {record.getMessage()}")


def _draw_and_encode(draw, kind: str) -> bytes:
    return encode_picture(draw(), kind)
