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
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imgexplain.cam.methods import METHODS as CAM_METHODS
from imgexplain.cam.methods import REGISTRY as CAM_REGISTRY
from imgexplain.datasets import MAX_PIXELS
from imgexplain.outputs import sigmoid_labels
from imgexplain.schema import timing_column
from imgexplain.segmentation import DEFAULT_SEGMENTATION

METHODS = ("anchor",) + CAM_METHODS
"""The explanation methods: ``anchor`` (:class:`~imgexplain.AnchorImage`) and the class activation maps of
:class:`~imgexplain.CAM`."""

# Seed 000's settings: the default segmentation's (slic's) arguments, and the anchor search's.
SEGMENTATION_KWARGS = {"n_segments": 15, "compactness": 20, "sigma": 0.5, "start_label": 0}
P_SAMPLE = 0.5
TAU = 0.25
HEATMAP_COLORMAP = "viridis"
PICTURES = "pictures"
PICTURE_KINDS = ("auto", "png", "jpeg", "none")
PICTURE_SIZE = 224  # pictures of smaller inputs are enlarged (nearest neighbour) to about this size
TOP_K = 5


def layer_title(name: str) -> str:
    """A layer's name as a reader would say it: '_head_activation' -> 'head activation'."""
    return " ".join(name.replace(".", " ").replace("_", " ").split()) or name


def encode_picture(array, kind: str) -> bytes:
    """``array`` (uint8 pixels) as the bytes of a ``kind`` ('png' or 'jpeg') file.

    PNG is written at zlib level 1: a few times faster than Pillow's default, and a little larger. JPEG at
    quality 90 without chroma subsampling (a heatmap's coloured edges stay sharp): ten times faster than
    that PNG, a fifth of its size.
    """
    from PIL import Image

    buffer = io.BytesIO()
    picture = array if isinstance(array, Image.Image) else Image.fromarray(np.asarray(array, dtype=np.uint8))
    if kind == "png":
        picture.convert("RGB").save(buffer, format="PNG", compress_level=1)
    else:
        picture.convert("RGB").save(buffer, format="JPEG", quality=90, subsampling=0)
    return buffer.getvalue()


def encoded(row: dict) -> dict:
    """``row`` with its ``'files'`` encoded: each deferred picture (a callable) replaced by its bytes."""
    row["files"] = {path: data() if callable(data) else data for path, data in row.get("files", {}).items()}
    return row


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


@dataclass
class LoadedImage:
    """An image as :meth:`ImageExplainer.load` gives it: at the model's size, as shown, and its picture names."""

    x: np.ndarray  # (H, W, 3) float32 0..255 at the model's input size
    shown: np.ndarray  # uint8, at the image's aspect ratio (small inputs enlarged without blurring)
    stem: str  # pictures/NAME-HASH
    pixelated: bool = False  # shown enlarged by nearest neighbour: sharp edges that JPEG would blur


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

    ``target`` None explains the predicted class; anchors explain the prediction, or, for a multi-label
    classifier (``classifier.multilabel``), 'the explained label is present'. Images of more than
    ``max_pixels`` pixels are refused (``datasets.load_image``). ``pictures`` is 'auto' (photographs, the
    input and its heatmap overlays, as JPEG; drawings, the anchor and the superpixels, and small inputs
    enlarged to sharp blocks of pixels, as PNG), 'png', 'jpeg' or 'none'; they keep the input's aspect
    ratio and are named after its file. :meth:`explain` takes one image; :meth:`load` and
    :meth:`explain_batch` split the same work so that a stream decodes ahead and computes the CAMs of a
    batch in one forward and backward pass.
    """

    def __init__(self, load_classifier, methods, *, target=None, threshold=0.95, seed=0, max_pixels=MAX_PIXELS,
                 pictures="auto", top_k=TOP_K, layer=None, p_sample=P_SAMPLE, segmentation=DEFAULT_SEGMENTATION,
                 segmentation_kwargs=None, verbose=False):
        from imgexplain.anchors.image import AnchorImage
        from imgexplain.cam.core import CAM

        self.classifier = classifier = load_classifier()
        self.methods, self.target, self.threshold, self.max_pixels = list(methods), target, threshold, max_pixels
        if pictures not in PICTURE_KINDS:
            raise ValueError(f"pictures must be one of {', '.join(PICTURE_KINDS)}; got {pictures!r}")
        self.pictures = pictures
        self.top_k, self.p_sample, self.verbose, self.segmentation = top_k, p_sample, verbose, segmentation
        self.anchor = None
        if "anchor" in self.methods:
            kwargs = dict(SEGMENTATION_KWARGS) if segmentation_kwargs is None else dict(segmentation_kwargs)
            self.anchor = AnchorImage(classifier.predictor, classifier.input_size + (3,),
                                      segmentation_fn=segmentation, segmentation_kwargs=kwargs or None, seed=seed)
        cam_model = classifier.cam_model if classifier.cam_model is not None else classifier.model
        cam_layer = classifier.cam_layer if layer is None else layer
        self.cams = {method: CAM(cam_model, layer=cam_layer if CAM_REGISTRY[method].takes_layer else None,
                                 method=method, output=classifier.cam_output, forward=classifier.cam_forward,
                                 verbose=verbose)
                     for method in self.methods if method in CAM_METHODS}
        # The prediction comes from the first gradient method's own forward pass (Score-CAM's and
        # Ablation-CAM's further passes would call a recording target on other images).
        self.predicting = next((method for method in self.cams
                                if CAM_REGISTRY[method].needs in ("gradients", "hessian", "bias gradients")), None)
        self.report_progress = None  # a callable of one line: the anchor search's rounds are shown with it

    def load(self, image) -> LoadedImage:
        """The image (a file, decoded once, or an array) at the model's input size (float32 0..255), its
        picture at its own aspect ratio, and the pictures' names."""
        from imgexplain.datasets import load_image, resize_image

        pixels = load_image(image, target_size=None, max_pixels=self.max_pixels)
        x = resize_image(pixels, self.classifier.input_size).astype(np.float32)
        size = display_size(pixels.shape[:2], self.classifier.input_size)
        shown = _resize_pixels(pixels.astype(np.uint8), size)
        enlarged = size[0] * size[1] > pixels.shape[0] * pixels.shape[1]
        return LoadedImage(x, shown, picture_stem(image, x), pixelated=enlarged)

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
        x = np.stack([image.x for image in images])
        try:
            probs, maps = self._batch_cams(x)
        except Exception as error:
            if len(images) == 1:
                return [error]
            return [row for image in images for row in self.explain_batch([image])]
        rows = []
        for n in range(len(images)):
            try:
                rows.append(self._row(images[n], probs[n], {method: (result.maps[n], result.layer)
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

    def _row(self, image: LoadedImage, probs, maps) -> dict:
        x, shown, stem = image.x, image.shown, image.stem
        photo = self._file_kind(photograph=not image.pixelated)
        ranked = self.classifier.top_classes(probs, probs.shape[0])
        names = {k: label for k, label, _ in ranked}
        predicted = ranked[0][0]
        explained = predicted if self.target is None else self.target
        row = {"target": explained, "label": names[explained], "predicted": predicted,
               "top5": [{"index": k, "label": label, "p": p} for k, label, p in ranked[:self.top_k]],
               "pictures": [], "files": {}}
        self._picture(row, f"{stem}-input", photo, lambda: shown, "input",
                      f"model input {x.shape[1]}x{x.shape[0]} pixels, shown at the image's aspect ratio")
        for method in self.methods:
            tick = time.perf_counter()
            if method == "anchor":
                if self.classifier.multilabel:
                    self.anchor.reset_predictor(functools.partial(_label_column, self.classifier.predictor, explained))
                    state = "present" if sigmoid_labels(probs[explained]) else "absent"
                    anchored = f"label {explained} {names[explained]} {state}"
                else:
                    anchored = f"{predicted} {names[predicted]}"
                self._explain_anchor(row, x, shown, stem, anchored)
            else:
                self._cam_row(row, method, *maps[method], shown, stem, photo)
            row[timing_column(method).name] = time.perf_counter() - tick
        return row

    def _file_kind(self, photograph: bool) -> str:
        """'jpeg' or 'png' for a picture: ``pictures='auto'`` writes photographs as JPEG and drawings as PNG."""
        return "jpeg" if self.pictures == "jpeg" or (self.pictures == "auto" and photograph) else "png"

    def _picture(self, row, stem, kind, draw, title, caption, colormap=None):
        """A picture of the row as a ``kind`` file, drawn and encoded later (``draw()`` gives its uint8 pixels)."""
        if self.pictures == "none":
            return
        path = f"{stem}.{'jpg' if kind == 'jpeg' else 'png'}"
        row["files"][path] = functools.partial(_draw_and_encode, draw, kind)
        row["pictures"].append({"path": path, "title": title, "caption": caption, "colormap": colormap})

    def _explain_anchor(self, row, x, shown, stem, predicted_name):
        from imgexplain import render

        with _anchor_rounds(self.report_progress) as verbose:
            explanation = self.anchor.explain(x, threshold=self.threshold, p_sample=self.p_sample, tau=TAU,
                                              verbose=verbose or self.verbose)
        features = [int(k) for k in explanation.raw["feature"]]
        precision, coverage = float(explanation.precision), float(explanation.coverage)
        row.update(anchor=features, precision=precision, coverage=coverage,
                   num_preds=int(explanation.raw["num_preds"]), anchor_found=explanation.success)
        segments = _resize_labels(explanation.segments, shown.shape[:2])
        if explanation.empty_anchor:
            caption = render.EMPTY_ANCHOR_TEXT
        else:
            caption = (f"superpixel{'s' if len(features) > 1 else ''} #{', #'.join(map(str, features))} "
                       f"({len(features)} of {int(explanation.segments.max()) + 1}; hatched: may be perturbed): "
                       f"precision {precision:.2f}, coverage {coverage:.2f}")
        if not explanation.success:
            caption += f" (below the threshold {self.threshold}: the best anchor found)"
        drawing = self._file_kind(photograph=False)
        self._picture(row, f"{stem}-anchor", drawing, lambda: render.anchor_picture(shown, segments, features),
                      f"anchor of {predicted_name}", caption)
        self._picture(row, f"{stem}-superpixels", drawing, lambda: render.boundaries_picture(shown, segments),
                      "superpixels", f"{int(explanation.segments.max()) + 1} {self.segmentation} superpixels, "
                                     "numbered")

    def _cam_row(self, row, method, heatmap, layer, shown, stem, kind):
        from imgexplain import render

        heatmap = np.asarray(heatmap, dtype=np.float32)
        row[method] = heatmap.tolist()
        row["layer"] = str(layer)
        self._picture(row, f"{stem}-{method.replace('+', 'p')}", kind,
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
