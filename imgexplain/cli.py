"""The ``imgexplain`` command: explain image files with anchors and class activation maps.

``imgexplain explain IMAGE...`` writes, for each image, the pictures (input, anchor,
superpixels, one heatmap overlay per CAM method) as PNG files and a ``report.html``
that shows them side by side with the top-5 predictions, the anchor's precision and
coverage, the arguments used and the timings. ``imgexplain demo`` does the same for
sample photographs with the built-in model.

Exit status: 0 on success, 2 for bad input (one line on stderr, nothing written).
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np

from imgexplain import models
from imgexplain._version import __version__
from imgexplain.cam.methods import METHODS as CAM_METHODS
from imgexplain.models import BUILTIN_MODEL, PREPROCESSING, Classifier

METHODS = ("anchor",) + CAM_METHODS
DEFAULT_OUT = "imgexplain-out"
DEMO_SAMPLES = ("chelsea", "coffee", "camera")
HEATMAP_COLORMAP = "viridis"

# Seed 000's settings: slic superpixels, and the anchor search arguments.
SEGMENTATION_KWARGS = {"n_segments": 15, "compactness": 20, "sigma": 0.5, "start_label": 0}
P_SAMPLE = 0.5
TAU = 0.25

class InputError(ValueError):
    """Bad input on the command line: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"imgexplain: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="imgexplain",
        description="Explain the predictions of image classifiers with anchors and class activation maps.",
    )
    parser.add_argument("--version", action="version", version=f"imgexplain {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    explain = commands.add_parser(
        "explain",
        help="explain image files and write an HTML report",
        description=(
            "Explain the model's prediction for each IMAGE (PNG, JPEG or any format Pillow reads; "
            "resized to the model's input) and write the pictures and report.html into --out."
        ),
    )
    explain.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    explain.add_argument(
        "--method", default="anchor,gradcam",
        help=f"comma-separated methods among {', '.join(METHODS)} (default: anchor,gradcam)",
    )
    explain.add_argument(
        "--model", default=BUILTIN_MODEL,
        help=(
            f"'{BUILTIN_MODEL}' (built in, ImageNet), or your own saved model: a .keras file, a "
            "torch.export file (.pt2, from torch.export.save) or a TorchScript file (anchors only) "
            "(default: %(default)s)"
        ),
    )
    explain.add_argument(
        "--framework", choices=("torch", "keras"), default=None,
        help="framework of the built-in model (default: torch); a saved model's is read from its file",
    )
    explain.add_argument(
        "--input-size", default=None, metavar="H,W",
        help="input height and width of your own model (needed for TorchScript; by default the size "
             "that a .keras or .pt2 model fixes)",
    )
    explain.add_argument(
        "--preprocess", choices=sorted(PREPROCESSING), default=None,
        help=(
            "how your own model wants pixels: none (0..255), unit (/255), tf ([-1, 1]), torch or imagenet "
            "(ImageNet mean and std), lite ((x - 127) / 128) (default: none). Outputs that are not "
            "probabilities (rows not summing to 1) go through a softmax; one column must be a sigmoid "
            "probability"
        ),
    )
    explain.add_argument(
        "--target", type=int, default=None, metavar="N",
        help="class the heatmaps explain (default: the predicted class); anchors always explain the prediction",
    )
    explain.add_argument(
        "--threshold", type=float, default=0.95,
        help="precision an anchor must reach, in (0, 1] (default: %(default)s)",
    )
    explain.add_argument("--seed", type=int, default=0, help="random seed of the anchor search (default: 0)")
    explain.add_argument(
        "--workers", type=int, default=0, metavar="N",
        help="search the anchors of N images at a time on Ray workers, each with its own copy of the model "
             "(default: 0, one after the other in this process). Worth it with more cores than one model "
             "call keeps busy",
    )
    explain.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help="output folder (default: %(default)s)")
    explain.set_defaults(run=_explain_command)

    demo = commands.add_parser(
        "demo",
        help="explain sample photographs with the built-in model",
        description=(
            f"Explain the sample photographs {', '.join(DEMO_SAMPLES)} with the built-in {BUILTIN_MODEL} "
            "model, by anchor and gradcam, and print where the report is."
        ),
    )
    demo.add_argument("--framework", choices=("torch", "keras"), default="torch",
                      help="framework of the built-in model (default: %(default)s)")
    demo.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help="output folder (default: %(default)s)")
    demo.set_defaults(run=_demo_command)
    return parser


def main(argv=None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    # TensorFlow's C++ start-up messages would bury the progress bar and the error lines.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 0
    try:
        return args.run(args)
    except InputError as error:
        print(f"imgexplain: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("imgexplain: interrupted; nothing was written", file=sys.stderr)
        return 130


# --- checking the arguments (before any model is loaded) -------------------------------------------------


def parse_methods(text: str) -> list[str]:
    methods = [name.strip().lower() for name in text.split(",") if name.strip()]
    unknown = [name for name in methods if name not in METHODS]
    if unknown or not methods:
        raise InputError(f"--method: unknown method {', '.join(map(repr, unknown)) or repr(text)}; "
                         f"choose among {', '.join(METHODS)}")
    return list(dict.fromkeys(methods))


def parse_input_size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*[,x]\s*(\d+)\s*", text)
    if not match or min(int(match[1]), int(match[2])) < 1:
        raise InputError(f"--input-size: expected H,W with two positive integers such as 224,224; got {text!r}")
    return int(match[1]), int(match[2])


def read_image(path) -> np.ndarray:
    """Decode an image file to a (H, W, 3) uint8 array, or raise InputError saying what is wrong."""
    from PIL import UnidentifiedImageError
    from PIL.Image import DecompressionBombError

    from imgexplain.datasets import load_image

    path = Path(path)
    if not path.exists():
        raise InputError(f"no such image file: {str(path)!r}")
    if not path.is_file():
        raise InputError(f"not a file: {str(path)!r}")
    try:
        return load_image(path, target_size=None)
    except UnidentifiedImageError:
        raise InputError(f"not an image (Pillow cannot read it): {str(path)!r}") from None
    except PermissionError:
        raise InputError(f"cannot read image file (permission denied): {str(path)!r}") from None
    except DecompressionBombError as error:
        raise InputError(f"image file too large {str(path)!r}: {error}") from None
    except (OSError, ValueError, SyntaxError) as error:
        raise InputError(f"damaged image file {str(path)!r}: {error}") from None


def check_explain_arguments(args) -> dict:
    """Check every argument and every file; return the settings the run uses."""
    from imgexplain import report

    methods = parse_methods(args.method)
    if not 0.0 < args.threshold <= 1.0:
        raise InputError(f"--threshold: expected a number in (0, 1]; got {args.threshold}")
    if args.target is not None and args.target < 0:
        raise InputError(f"--target: expected a class index >= 0; got {args.target}")
    if args.workers < 0:
        raise InputError(f"--workers: expected a number of workers >= 0; got {args.workers}")
    try:
        kind = models.model_kind(args.model)
    except models.ModelError as error:
        raise InputError(f"--model: {error}") from None
    if kind == "builtin":
        for option, value in (("--input-size", args.input_size), ("--preprocess", args.preprocess)):
            if value is not None:
                raise InputError(f"{option} applies to your own saved model; {BUILTIN_MODEL} has its own")
        framework = args.framework or "torch"
    else:
        framework = "keras" if kind == "keras" else "torch"
        if args.framework not in (None, framework):
            raise InputError(f"--framework {args.framework}: {args.model!r} is a {framework} model")
    input_size = parse_input_size(args.input_size) if args.input_size is not None else None
    if kind == "torchscript" and input_size is None:
        raise InputError("--input-size H,W is needed for a TorchScript model")
    if kind == "torchscript":
        cam_methods = [method for method in methods if method != "anchor"]
        if cam_methods:
            raise InputError(f"--method {','.join(cam_methods)}: class activation maps need the model's layers, "
                             "which a TorchScript file does not expose; use --method anchor, or save the "
                             "model with torch.export.save")
    for path in args.images:
        read_image(path)
    try:
        out = report.check_output_folder(args.out)
    except ValueError as error:
        raise InputError(str(error)) from None
    return {
        "methods": methods, "kind": kind, "framework": framework, "input_size": input_size,
        "preprocess": args.preprocess or "none", "out": out,
    }


# --- explaining ------------------------------------------------------------------------------------------


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 image -> (h, w, 3) float32 in 0..255 at the model's input size."""
    from imgexplain.datasets import resize_image

    return resize_image(image, size).astype(np.float32)


def _file_stems(names) -> list[str]:
    """Distinct, file-name-safe stems for the pictures of each image."""
    stems, seen = [], set()
    for name in names:
        stem = re.sub(r"[^\w.-]+", "_", Path(name).stem) or "image"
        unique, k = stem, 2
        while unique in seen:
            unique, k = f"{stem}-{k}", k + 1
        seen.add(unique)
        stems.append(unique)
    return stems


def _save_png(array: np.ndarray, path: Path) -> None:
    from PIL import Image

    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)


def _describe_anchor(explanation, threshold: float) -> tuple[dict, str]:
    """The anchor's facts for the report, and a caption for its picture."""
    features = [int(k) for k in explanation.data["raw"]["feature"]]
    precision, coverage = float(explanation.precision), float(explanation.coverage)
    facts = {"precision": f"{precision:.3f}", "coverage": f"{coverage:.3f}",
             "superpixels in the anchor": ", ".join(map(str, features)) if features else "none",
             "superpixels in the image": int(np.max(explanation.segments)) + 1}
    if explanation.data["empty_anchor"]:
        caption = "empty anchor: the prediction holds whatever is perturbed"
    else:
        caption = f"precision {precision:.2f}, coverage {coverage:.2f}"
    if not explanation.data["success"]:
        facts["note"] = f"no anchor reached the threshold {threshold}; this is the best one found"
        caption += f" (below the threshold {threshold})"
    return facts, caption


def explain_images(classifier: Classifier, images, methods, folder: Path, *, target=None,
                   threshold=0.95, seed=0, arguments: dict | None = None, title="imgexplain report",
                   workers=0, load_classifier: Callable[[], Classifier] | None = None) -> Path:
    """Explain each image with each method; write the PNGs and the report into ``folder``.

    ``images`` is a sequence of ``(name, source)``: a (H, W, 3) uint8 array or an image file,
    read when its turn comes. With ``workers`` > 0, the anchors of all images are searched first
    on that many Ray workers, each loading the model with ``load_classifier``. Returns the report's path.
    """
    from tqdm import tqdm

    from imgexplain import render, report

    arguments = dict(arguments or {})
    explainer = None
    if "anchor" in methods:
        if not workers:
            explainer = _anchor_explainer(classifier, seed)
        arguments.update({"segmentation": f"slic {SEGMENTATION_KWARGS}", "p_sample": P_SAMPLE, "tau": TAU})
    cams = {}
    if any(method in CAM_METHODS for method in methods):
        from imgexplain.cam.api import CAM

        cams = {method: CAM(classifier.model, layer=classifier.cam_layer, method=method)
                for method in methods if method in CAM_METHODS}

    sections = []
    started = time.perf_counter()
    stems = _file_stems(name for name, _ in images)
    anchors_found = inputs = None
    if workers and "anchor" in methods:
        from imgexplain.distributed import explain_many

        make_explainer = partial(_TimedAnchorSearch, load_classifier, seed)
        inputs = [resize(_pixels(source), classifier.input_size) for _, source in images]
        anchors_found = explain_many(make_explainer, inputs, n_workers=workers, threshold=threshold,
                                     p_sample=P_SAMPLE, tau=TAU)
        arguments["anchor workers"] = workers
    with tqdm(total=len(images) * len(methods), desc="explaining", unit="explanation", file=sys.stderr) as progress:
        for index, ((name, source), stem) in enumerate(zip(images, stems)):
            image = inputs[index] if inputs is not None else resize(_pixels(source), classifier.input_size)
            probs = np.asarray(classifier.predictor(image[np.newaxis]))[0]
            ranked = classifier.top_classes(probs, probs.shape[0])
            names = {k: label for k, label, _ in ranked}
            predicted = ranked[0][0]
            explained = predicted if target is None else target
            # Every picture is named STEM-KIND with no '-' in KIND, so two images' pictures never collide.
            pictures = [report.Picture(f"{stem}-input.png", "input", f"{image.shape[1]}x{image.shape[0]} pixels")]
            _save_png(image, folder / pictures[0].path)
            section = report.ImageSection(
                name=str(name), pictures=pictures, target=f"{explained} {names[explained]}",
                predictions=[(f"{k} {label}", p) for k, label, p in ranked[:5]],
            )
            for method in methods:
                progress.set_postfix_str(f"{stem}: {method}")
                tick = time.perf_counter()
                if method == "anchor":
                    if anchors_found is not None:
                        explanation, section.timings[method] = anchors_found[index]
                    else:
                        explanation = explainer.explain(image, threshold=threshold, p_sample=P_SAMPLE, tau=TAU)
                        section.timings[method] = time.perf_counter() - tick
                    section.anchor, caption = _describe_anchor(explanation, threshold)
                    segments, features = explanation.segments, explanation.data["raw"]["feature"]
                    _save_png(render.anchor_picture(image, segments, features), folder / f"{stem}-anchor.png")
                    _save_png(render.boundaries_picture(image, segments), folder / f"{stem}-superpixels.png")
                    pictures.append(report.Picture(f"{stem}-anchor.png", f"anchor of {predicted} {names[predicted]}",
                                                   caption))
                    pictures.append(report.Picture(f"{stem}-superpixels.png", "superpixels",
                                                   f"{section.anchor['superpixels in the image']} slic superpixels"))
                    if explained != predicted:
                        section.notes.append(f"The anchor explains the predicted class {predicted}, "
                                             f"not the --target {explained}.")
                else:
                    result = cams[method].compute(classifier.preprocess(image[np.newaxis]), targets=[explained])
                    section.timings[method] = time.perf_counter() - tick
                    heatmap = result.maps[0]
                    path = f"{stem}-{method.replace('+', 'p')}.png"
                    overlay = render.overlay_heatmap(image.astype(np.uint8), heatmap, colormap=HEATMAP_COLORMAP)
                    overlay.convert("RGB").save(folder / path)
                    pictures.append(report.Picture(
                        path, method, f"layer {result.layer}, {heatmap.shape[0]}x{heatmap.shape[1]} map",
                        colormap=HEATMAP_COLORMAP))
                progress.update()
            sections.append(section)
    arguments["total time"] = f"{time.perf_counter() - started:.1f} s"
    return report.write_report(folder, sections, arguments, title=title)


def _pixels(source) -> np.ndarray:
    return read_image(source) if isinstance(source, (str, Path)) else np.asarray(source)


def _anchor_explainer(classifier: Classifier, seed):
    from imgexplain import AnchorImage

    return AnchorImage(classifier.predictor, classifier.input_size + (3,), segmentation_fn="slic",
                       segmentation_kwargs=dict(SEGMENTATION_KWARGS), seed=seed)


class _TimedAnchorSearch:
    """The command's anchor explainer on a Ray worker: loads the model there, returns (explanation, seconds)."""

    def __init__(self, load_classifier: Callable[[], Classifier], seed):
        self.explainer = _anchor_explainer(load_classifier(), seed)

    def explain(self, image, **kwargs):
        tick = time.perf_counter()
        explanation = self.explainer.explain(image, **kwargs)
        return explanation, time.perf_counter() - tick


def _explain_command(args) -> int:
    from imgexplain import report

    settings = check_explain_arguments(args)
    first = read_image(args.images[0])
    tick = time.perf_counter()
    if settings["kind"] == "builtin":
        load_classifier = partial(models.load_builtin, settings["framework"])
    else:
        load_classifier = partial(models.load_saved_model, str(Path(args.model).absolute()), settings["kind"],
                                  settings["input_size"], settings["preprocess"])
    try:
        classifier = load_classifier()
        load_seconds = time.perf_counter() - tick
        n_classes = models.probe(classifier, resize(first, classifier.input_size), settings["preprocess"]).shape[0]
    except models.ModelError as error:
        raise InputError(f"--model: {error}") from None
    if args.target is not None and args.target >= n_classes:
        raise InputError(f"--target: {args.target} is not a class of {classifier.name}, "
                         f"which has {n_classes} classes (0..{n_classes - 1})")

    arguments = {
        "images": " ".join(args.images), "method": ",".join(settings["methods"]), "model": args.model,
        "framework": classifier.framework, "input size": "x".join(map(str, classifier.input_size)),
        "target": "predicted class" if args.target is None else args.target,
        "threshold": args.threshold, "seed": args.seed, "model loading time": f"{load_seconds:.1f} s",
    }
    if settings["kind"] != "builtin":
        arguments["preprocess"] = settings["preprocess"]
    with report.staged_output(settings["out"]) as folder:
        explain_images(classifier, [(path, path) for path in args.images], settings["methods"], folder,
                       target=args.target, threshold=args.threshold, seed=args.seed, arguments=arguments,
                       workers=args.workers, load_classifier=load_classifier)
    print(settings["out"] / report.REPORT_NAME)
    return 0


def _demo_command(args) -> int:
    from imgexplain import datasets, report

    try:
        out = report.check_output_folder(args.out)
    except ValueError as error:
        raise InputError(str(error)) from None
    images = list(datasets.load_samples(target_size=None, names=DEMO_SAMPLES).items())
    tick = time.perf_counter()
    classifier = models.load_builtin(args.framework)
    methods = ["anchor", "gradcam"]
    arguments = {"images": ", ".join(DEMO_SAMPLES) + " (scikit-image sample photographs)",
                 "method": ",".join(methods), "model": BUILTIN_MODEL, "framework": args.framework,
                 "threshold": 0.95, "seed": 0, "model loading time": f"{time.perf_counter() - tick:.1f} s"}
    with report.staged_output(out) as folder:
        explain_images(classifier, images, methods, folder, arguments=arguments, title="imgexplain demo")
    print(f"report written to {out / report.REPORT_NAME}")
    return 0
