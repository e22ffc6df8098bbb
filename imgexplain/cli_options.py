"""The command line's options for what is explained and how much is said: their definitions and checks.

``--multilabel``, ``--top-k``, ``--segmentation``, ``--n-segments``, ``--p-sample``, ``--layer``, ``--quiet``
and ``--verbose``; :mod:`imgexplain.cli` adds them to its commands and checks them with the rest, before
any model loads.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from imgexplain import explainers
from imgexplain.models import BUILTIN_MODEL
from imgexplain.segmentation import COUNT_ARGUMENT, DEFAULT_SEGMENTATION, SEGMENTATION_FUNCTIONS

ANCHOR_ARGUMENTS = ("threshold", "seed", "segmentation", "p_sample", "tau")  # shown only when anchors run
CAM_ARGUMENTS = ("layer", "target")  # shown only when a class activation map runs


class InputError(ValueError):
    """Bad input on the command line: reported in one line, exit status 2."""


def add_explanation_options(command: argparse.ArgumentParser) -> None:
    """What is explained: the model's kind of outputs, the classes kept, the anchor search, the CAM layer."""
    command.add_argument("--multilabel", action="store_true",
                         help="the model's outputs are independent probabilities, one per label (sigmoids): "
                              "never softmaxed; the anchor explains 'label k present' (default: decided from the "
                              "outputs: values in [0, 1] whose rows do not sum to 1)")
    command.add_argument("--top-k", type=int, default=explainers.TOP_K, metavar="K",
                         help="top classes recorded and shown per image (default: %(default)s)")
    command.add_argument("--segmentation", choices=sorted(SEGMENTATION_FUNCTIONS), default=DEFAULT_SEGMENTATION,
                         help="how the anchor's superpixels are made (scikit-image; default: %(default)s)")
    command.add_argument("--n-segments", type=int, default=None, metavar="N",
                         help=f"about how many superpixels, for --segmentation {' or '.join(COUNT_ARGUMENT)} "
                              f"(default: {explainers.SEGMENTATION_KWARGS[COUNT_ARGUMENT[DEFAULT_SEGMENTATION]]})")
    command.add_argument("--p-sample", type=float, default=explainers.P_SAMPLE, metavar="P",
                         help="probability that the anchor search perturbs a superpixel, in [0, 1] "
                              "(default: %(default)s)")
    command.add_argument("--layer", default=None, metavar="NAME",
                         help="layer the class activation maps use (default: the last feature map)")


def add_talk_options(command: argparse.ArgumentParser) -> None:
    """``--quiet`` and ``--verbose``, which exclude each other."""
    talk = command.add_mutually_exclusive_group()
    talk.add_argument("--quiet", "-q", action="store_true",
                      help="print only the report's path (no progress bar, no counts, no warnings)")
    talk.add_argument("--verbose", "-v", action="store_true",
                      help="also log what each step does (the anchor search's progress, model loading)")


def set_talk(quiet: bool, verbose: bool) -> None:
    """--quiet: only errors from imgexplain's loggers; --verbose: their INFO records too (on stderr)."""
    logger = logging.getLogger("imgexplain")
    if quiet:
        logger.setLevel(logging.ERROR)
    elif verbose:
        logger.setLevel(logging.INFO)
        if not logger.handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("imgexplain: %(message)s"))
            logger.addHandler(handler)


def check_options(args, methods: list[str], kind: str) -> None:
    """InputError for a value out of range, or an option of a method that does not run."""
    if args.top_k < 1:
        raise InputError(f"--top-k: expected a number of classes >= 1; got {args.top_k}")
    if args.n_segments is not None and args.n_segments < 2:
        raise InputError(f"--n-segments: expected a number of superpixels >= 2; got {args.n_segments}")
    if args.n_segments is not None and args.segmentation not in COUNT_ARGUMENT:
        raise InputError(f"--n-segments applies to --segmentation {' or '.join(COUNT_ARGUMENT)}; "
                         f"{args.segmentation} finds its own number")
    if "anchor" not in methods:
        given = {"--segmentation": args.segmentation != DEFAULT_SEGMENTATION,
                 "--n-segments": args.n_segments is not None,
                 "--p-sample": args.p_sample != explainers.P_SAMPLE}
        for option in (option for option, is_given in given.items() if is_given):
            raise InputError(f"{option} applies to --method anchor, which this run does not use")
    if args.layer is not None and methods == ["anchor"]:
        raise InputError("--layer applies to the class activation maps; --method anchor uses none")
    if args.multilabel and kind == "builtin":
        raise InputError(f"--multilabel: {BUILTIN_MODEL} is a softmax model of exclusive classes")


def check_layer(classifier, layer: str) -> None:
    """InputError unless the class activation maps can use ``layer`` of the loaded ``classifier``."""
    from imgexplain.cam.core import CAM

    cam_model = classifier.cam_model if classifier.cam_model is not None else classifier.model
    try:
        CAM(cam_model, layer=layer, output=classifier.cam_output)
    except (ValueError, TypeError) as error:
        raise InputError(f"--layer: {error}") from None


def check_folders_have_images(paths) -> None:
    """InputError for a folder with no image file in it (searched recursively)."""
    from imgexplain.pipeline import image_extensions, list_images

    for path in map(Path, paths):
        if path.is_dir() and not list_images([path]):
            raise InputError(f"no image files in the folder {str(path)!r} (searched recursively for "
                             f"{', '.join(sorted(image_extensions())[:8])}, ... files; hidden files skipped)")


def segmentation_kwargs(segmentation: str, n_segments: int | None = None) -> dict:
    """The keyword arguments of the command line's ``segmentation``: seed 000's for the default segmentation
    (:data:`~imgexplain.explainers.SEGMENTATION_KWARGS`), the reference's for the others, with ``n_segments``
    (when given) as the segmentation's count argument (:data:`~imgexplain.segmentation.COUNT_ARGUMENT`).

    Examples
    --------
    >>> from imgexplain.cli_options import segmentation_kwargs
    >>> segmentation_kwargs("slic", 30)["n_segments"], segmentation_kwargs("quickshift", None)
    (30, {})
    """
    kwargs = dict(explainers.SEGMENTATION_KWARGS) if segmentation == DEFAULT_SEGMENTATION else {}
    if n_segments is not None:
        kwargs[COUNT_ARGUMENT[segmentation]] = n_segments
    return kwargs


def unused_arguments(methods: list[str]) -> tuple[str, ...]:
    """The run arguments that no method of ``methods`` uses (left out of the fingerprint and the report)."""
    return (() if "anchor" in methods else ANCHOR_ARGUMENTS) + (() if methods != ["anchor"] else CAM_ARGUMENTS)
