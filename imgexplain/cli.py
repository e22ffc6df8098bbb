"""The ``imgexplain`` command: argument parsing and the commands.

``imgexplain explain PATH... --out OUT`` explains every image file (folders are read recursively)
and appends a row per image to ``OUT/results.parquet`` as each one finishes; ``OUT/report.html`` is
written from that table at the end. Running the same command again resumes. ``imgexplain demo`` does
the same for sample photographs with the built-in model.

Exit status: 0 on success (images that cannot be explained are error rows), 2 for bad input (one line
on stderr, before any model loads and before anything is written), 1 when the run fails (one line:
a full disk, for example), 130 on Ctrl-C and 143 on SIGTERM (the rows written so far are kept and
reported). OUT is locked while a run writes in it: a second run on it is refused (exit status 2).
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

from imgexplain import classes, cli_options, explainers, models
from imgexplain._version import __version__
from imgexplain.cli_checks import (InputError, check_device, check_image_path, explain_settings,  # noqa: F401
                                   parse_input_size, parse_methods)
from imgexplain.datasets import MAX_PIXELS
from imgexplain.distributed import WorkerError
from imgexplain.explainers import METHODS
from imgexplain.models import BUILTIN_MODEL, PREPROCESSING
from imgexplain.ray_cluster import ClusterError
from imgexplain.results import TABLE_NAME
from imgexplain.schema import row_schema

DEFAULT_OUT = "imgexplain-out"
DEMO_SAMPLES = ("chelsea", "coffee", "camera")
DEVICE_HELP = ("where the model runs: cpu, cuda or cuda:N (default: cuda when ONNX Runtime or torch can use a GPU, "
               "else cpu)")


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
        "explain", help="explain image files and folders; write a results table and an HTML report",
        description=(
            "Explain the model's prediction for each image file (PNG, JPEG or any format Pillow reads; resized "
            "to the model's input; folders are read recursively) and append one row per image to "
            "OUT/results.parquet as it finishes. The same command run again explains only what is missing."),
    )
    explain.add_argument("images", nargs="+", metavar="PATH", help="image files or folders")
    explain.add_argument("--method", default="anchor,gradcam",
                         help=f"comma-separated methods among {', '.join(METHODS)} (default: anchor,gradcam)")
    explain.add_argument(
        "--model", default=BUILTIN_MODEL,
        help=(f"'{BUILTIN_MODEL}' (built in, ImageNet), or your own saved model: a .keras file, a torch.export "
              "file (.pt2, from torch.export.save), a TorchScript file or an .onnx file (these two: anchors "
              "only) (default: %(default)s)"))
    explain.add_argument("--framework", choices=("torch", "keras"), default=None,
                         help="framework of the built-in model (default: torch); a saved model's is read from its file")
    explain.add_argument("--device", default=None, help=DEVICE_HELP)
    explain.add_argument("--input-size", default=None, metavar="H,W",
                         help="input height and width of your own model (needed for TorchScript; by default the "
                              "size that a .keras or .pt2 model fixes)")
    explain.add_argument(
        "--preprocess", choices=sorted(PREPROCESSING), default=None,
        help=("how your own model wants pixels: none (0..255), unit (/255), tf ([-1, 1]), torch or imagenet "
              "(ImageNet mean and std), lite ((x - 127) / 128) (default: none). Outputs outside [0, 1] go "
              "through a softmax (in [0, 1]: see --multilabel); one column must be a sigmoid probability, "
              "explained as class 1 (and its complement as class 0)"))
    explain.add_argument("--labels", default=None, metavar="FILE",
                         help="text file of your model's class names, one a line (class 0 first)")
    explain.add_argument("--target", type=int, default=None, metavar="N",
                         help="class the heatmaps explain (default: the predicted class); anchors always explain "
                              "the prediction")
    explain.add_argument("--threshold", type=float, default=0.95,
                         help="precision an anchor must reach, in [0, 1] (default: %(default)s)")
    explain.add_argument("--seed", type=int, default=0, help="random seed of the anchor search (default: 0)")
    explain.add_argument(
        "--workers", type=int, default=0, metavar="N",
        help="explain N images at a time on Ray workers, each with its own copy of the model (default: 0, "
             "one after the other in this process; the same results either way)")
    explain.add_argument("--address", default=None,
                         help="Ray cluster to run the workers on (default: RAY_ADDRESS, or a Ray started for "
                              "the run)")
    explain.add_argument("--timeout", type=float, default=None, metavar="S",
                         help="seconds an image may take before its worker is stopped and replaced and the "
                              "image recorded as an error (needs --workers 1 or more: a model call in this "
                              "process cannot be interrupted)")
    explain.add_argument("--pictures", choices=explainers.PICTURE_KINDS, default="auto",
                         help="pictures of each image in OUT/pictures: auto (photographs and their heatmaps "
                              "as JPEG; anchors, superpixels and small images enlarged to blocks of pixels as "
                              "PNG), PNG, JPEG (smaller, faster) or none (the table only) (default: %(default)s)")
    explain.add_argument("--max-pixels", type=int, default=MAX_PIXELS, metavar="N",
                         help="refuse images of more than N pixels (default: %(default)s)")
    explain.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help="output folder (default: %(default)s)")
    cli_options.add_explanation_options(explain)
    cli_options.add_talk_options(explain)
    explain.set_defaults(run=_explain_command)

    demo = commands.add_parser(
        "demo", help="explain sample photographs with the built-in model",
        description=(f"Explain the sample photographs {', '.join(DEMO_SAMPLES)} with the built-in {BUILTIN_MODEL} "
                     "model, by anchor and gradcam, and print where the report is."),
    )
    demo.add_argument("--framework", choices=("torch", "keras"), default="torch",
                      help="framework of the built-in model (default: %(default)s)")
    demo.add_argument("--device", default=None, help=DEVICE_HELP)
    demo.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help="output folder (default: %(default)s)")
    cli_options.add_talk_options(demo)
    demo.set_defaults(run=_demo_command)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM: the run stops as on Ctrl-C (the rows so far are kept and reported), exit status 143."""


class _Signals:
    """SIGTERM raises :class:`Terminated` and is remembered: a Ray wait that it stops raises a plain
    KeyboardInterrupt, which must still end as a SIGTERM does."""

    def __init__(self):
        self.terminated = False

    def terminate(self, signum, frame):
        self.terminated = True
        raise Terminated

    def status(self, stop: KeyboardInterrupt) -> tuple[str, int]:
        """What the run says and its exit status after ``stop``."""
        return ("terminated", 143) if self.terminated or isinstance(stop, Terminated) else ("interrupted", 130)


def main(argv=None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    # TensorFlow's C++ start-up messages would bury the progress bar and the error lines.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # Ray's crash handler would print a stack dump on SIGTERM, which the command handles itself.
    os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")
    signals = _Signals()
    previous = signal.signal(signal.SIGTERM, signals.terminate)  # SIGTERM cleans up as Ctrl-C does
    try:
        try:
            return _main(argv)
        except KeyboardInterrupt as stop:
            said, status = signals.status(stop)
            out = getattr(stop, "out", None)
            kept = f"; the rows written so far are kept in {out}/results.parquet and the same command resumes"
            print(f"imgexplain: {said}{kept if out else ''}", file=sys.stderr)
            return status
    except KeyboardInterrupt as stop:  # a second signal while the first is reported
        return signals.status(stop)[1]
    finally:
        signal.signal(signal.SIGTERM, previous)


def _main(argv) -> int:
    from imgexplain.results import OutputError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 0
    logger = logging.getLogger("imgexplain")
    talk = logger.level, list(logger.handlers)
    cli_options.set_talk(args.quiet, args.verbose)
    try:
        return args.run(args)
    except (InputError, OutputError) as error:
        print(f"imgexplain: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"imgexplain: error: the run failed: {error}", file=sys.stderr)
        return 1
    except (WorkerError, ClusterError) as error:  # Ray's workers could not run
        print(f"imgexplain: error: the run failed: {error}".splitlines()[0], file=sys.stderr)
        return 1
    finally:
        logger.setLevel(talk[0])
        logger.handlers[:] = talk[1]


def _load_classifier(model, kind, framework, input_size, preprocess, labels, device=None, multilabel=None):
    classifier = (models.load_builtin(framework, device) if kind == "builtin"
                  else models.load_saved_model(model, kind, input_size, preprocess, device, multilabel))
    return classifier if labels is None else classifier.with_labels(labels)


def _run_arguments(args, settings) -> dict:
    """What decides the rows: a changed value is a different run (see :class:`~imgexplain.results.OutputFolder`).

    Only the arguments of the methods that run, and none left unset."""
    from imgexplain.results import content_hash, file_hash

    model = args.model if settings["kind"] == "builtin" else f"{Path(args.model).absolute()} " \
        f"(sha256 {file_hash(args.model)[:16]})"
    size = settings["input_size"]
    labels = settings["labels"]
    arguments = {
        "method": ",".join(settings["methods"]), "model": model, "framework": settings["framework"],
        "input size": None if size is None else "x".join(map(str, size)),
        "preprocess": None if settings["kind"] == "builtin" else settings["preprocess"],
        "labels": None if labels is None else content_hash("\n".join(labels).encode()),
        "multilabel": True if args.multilabel else None, "top k": args.top_k, "target": args.target,
        "layer": args.layer, "threshold": args.threshold, "seed": args.seed, "max pixels": args.max_pixels,
        "segmentation": f"{args.segmentation} {cli_options.segmentation_kwargs(args.segmentation, args.n_segments)}",
        "p_sample": args.p_sample, "tau": explainers.TAU}
    unused = cli_options.unused_arguments(settings["methods"])
    return {key: value for key, value in arguments.items() if value is not None and key not in unused}


def _output_folder(out, arguments):
    from imgexplain import report
    from imgexplain.explainers import PICTURES
    from imgexplain.results import OutputFolder

    entries = (PICTURES, report.REPORT_NAME, report.PAGES, report.SUMMARY_NAME)
    try:
        return OutputFolder(out, entries, arguments)
    except ValueError as error:
        raise InputError(str(error)) from None


def _explain_command(args) -> int:
    settings = explain_settings(args)
    arguments = _run_arguments(args, settings)
    folder = _output_folder(args.out, arguments)
    load = partial(_load_classifier, str(Path(args.model).absolute()) if settings["kind"] != "builtin" else args.model,
                   settings["kind"], settings["framework"], settings["input_size"], settings["preprocess"],
                   settings["labels"], settings["device"])
    tick = time.perf_counter()
    try:
        classifier = load(multilabel=args.multilabel or None)
        probs = models.probe(classifier, np.full((*classifier.input_size, 3), 128.0, np.float32),
                             settings["preprocess"])
    except models.DeviceError:
        raise InputError(_no_device(args.device)) from None
    except models.ModelError as error:
        raise InputError(f"--model: {error}") from None
    n_classes = probs.shape[0]
    if args.multilabel or (n_classes >= 2 and settings["kind"] != "builtin" and not classes.sums_to_one(probs)):
        load = partial(load, multilabel=True)  # independent probabilities: never softmaxed, explained per label
        classifier = load()
    if args.target is not None and args.target >= n_classes:
        raise InputError(f"--target: {args.target} is not a class of {classifier.name}, "
                         f"which has {n_classes} classes (0..{n_classes - 1})")
    if args.layer is not None:
        cli_options.check_layer(classifier, args.layer)
    if settings["labels"] is not None and len(settings["labels"]) != n_classes:
        raise InputError(f"--labels: {len(settings['labels'])} labels for {classifier.name}, which has "
                         f"{n_classes} classes")
    shown = dict(arguments, images=" ".join(args.images), workers=args.workers,
                 **{"model loading time": f"{time.perf_counter() - tick:.1f} s"})
    if classifier.multilabel:
        shown["multilabel"] = "yes: independent probabilities, the anchor explains 'label k present'"
    if args.workers:
        classifier = None  # each worker loads its own: the copy loaded for the checks is freed
    options = dict(target=args.target, threshold=args.threshold, seed=args.seed, max_pixels=args.max_pixels,
                   pictures=args.pictures, top_k=args.top_k, layer=args.layer, p_sample=args.p_sample,
                   segmentation=args.segmentation,
                   segmentation_kwargs=cli_options.segmentation_kwargs(args.segmentation, args.n_segments),
                   verbose=args.verbose)
    return _run(args.images, load, settings["methods"], folder, shown, classifier=classifier, options=options,
                workers=args.workers, timeout=args.timeout, address=args.address, quiet=args.quiet)


def _run(images, load, methods, folder, shown, *, classifier=None, options=None, workers=0, timeout=None,
         address=None, title="imgexplain report", quiet=False) -> int:
    """Explain ``images`` into ``folder``; write the report from the table (every row, earlier runs' too);
    print its path."""
    from imgexplain import pipeline

    options = options or {}
    if classifier is not None:
        load = partial(lambda loaded: loaded, classifier)  # the model loaded for the checks serves in-process
    make_explainer = partial(explainers.ImageExplainer, load, methods, **options)
    started = time.perf_counter()
    counts = {"ok": 0, "error": 0}
    with folder:
        try:
            results = pipeline.explain_dataset(
                images, make_explainer, out=folder, schema=row_schema(methods),
                arguments=folder.arguments, n_workers=workers, timeout=timeout, address=address,
                progress=not quiet)
            with contextlib.closing(results):  # stops the workers now, also when interrupted
                for result in results:
                    counts[result.status] += 1
        except SystemExit as exit_:
            if exit_.code != signal.SIGTERM:
                raise
            stop = Terminated()  # a SIGTERM while ray.init runs is Ray's SystemExit(15)
            _report_so_far(folder, methods, shown, started, title, stop)
            raise stop from None
        except KeyboardInterrupt as stop:  # Ctrl-C or SIGTERM: the report shows the rows written so far
            _report_so_far(folder, methods, shown, started, title, stop)
            raise
        path = _report(folder, methods, shown, started, title)
    if not quiet:
        print(f"imgexplain: {counts['ok']} explained, {counts['error']} errors in this run; the report shows "
              "every row of the table", file=sys.stderr)
    print(path)
    return 0


def _report_so_far(folder, methods, shown, started, title, stop) -> None:
    """The report of the rows written before the run was stopped (by ``stop``), if any were."""
    if folder.manifest is not None and (folder.path / TABLE_NAME).is_dir():
        stop.out = folder.path
        _report(folder, methods, shown, started, title)


def _report(folder, methods, shown, started, title) -> Path:
    """Write the report of every row of the table in ``folder``; its path."""
    from imgexplain import pipeline, report

    table = pipeline.results_table(folder, row_schema(methods))
    shown["total time"] = f"{time.perf_counter() - started:.1f} s"
    return report.write_report(folder.path, table, shown, title=title, reserve=folder.reserve)


def _demo_command(args) -> int:
    from imgexplain import datasets

    arguments = {"method": "anchor,gradcam", "model": BUILTIN_MODEL, "framework": args.framework,
                 "threshold": 0.95, "seed": 0, "images": ", ".join(DEMO_SAMPLES) + " (scikit-image samples)"}
    folder = _output_folder(args.out, arguments)
    images = list(datasets.load_samples(target_size=None, names=DEMO_SAMPLES).items())
    load = partial(models.load_builtin, args.framework, check_device(args.device))
    try:
        classifier = load()
    except models.DeviceError:
        raise InputError(_no_device(args.device)) from None
    return _run(images, load, ["anchor", "gradcam"], folder, dict(arguments), classifier=classifier,
                title="imgexplain demo", quiet=args.quiet)


def _no_device(device) -> str:
    return (f"--device {device}: this machine has no such device for the model; use --device cpu, or leave "
            "--device out to use a GPU when there is one")
