"""The checks of the command line's arguments, files and folders, made before any model is loaded.

Each bad value is an :class:`InputError`: one line on stderr, exit status 2.
"""
from __future__ import annotations

import difflib
import re
from pathlib import Path

from imgexplain import backends, classes, cli_options, models
from imgexplain.cam.methods import REGISTRY as CAM_REGISTRY
from imgexplain.explainers import METHODS
from imgexplain._files import NotRegularFileError
from imgexplain.datasets import MAX_PIXELS, ImageTooLargeError, check_image_file
from imgexplain.model_files import BUILTIN_MODEL, FILE_KINDS
from imgexplain.cli_options import InputError
from imgexplain.ray_cluster import check_address

MAX_SEED = 2**32 - 1
MAX_TIMEOUT = 365 * 24 * 3600


def parse_methods(text: str) -> list[str]:
    methods = [name.strip().lower() for name in text.split(",") if name.strip()]
    unknown = [name for name in methods if name not in METHODS]
    if unknown or not methods:
        guesses = [match for name in unknown for match in difflib.get_close_matches(name, METHODS, n=1)]
        hint = f"; did you mean {' or '.join(map(repr, guesses))}?" if guesses else ""
        raise InputError(f"--method: unknown method {', '.join(map(repr, unknown)) or repr(text)}{hint} "
                         f"(choose among {', '.join(METHODS)})")
    return list(dict.fromkeys(methods))


def parse_input_size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*[,x]\s*(\d+)\s*", text)
    if not match or min(int(match[1]), int(match[2])) < 1:
        raise InputError(f"--input-size: expected H,W with two positive integers such as 224,224; got {text!r}")
    return int(match[1]), int(match[2])


def check_image_path(path, max_pixels=MAX_PIXELS) -> None:
    """InputError unless ``path`` is a folder or an image file that :func:`~imgexplain.datasets.load_image`
    can read (its header only is read)."""
    from PIL import UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        raise InputError(f"no such image file or folder: {str(path)!r}")
    if path.is_dir():
        return
    try:
        check_image_file(path, max_pixels)
    except ImageTooLargeError as error:
        raise InputError(str(error)) from None
    except UnidentifiedImageError:
        raise InputError(f"not an image (Pillow cannot read it): {str(path)!r}") from None
    except PermissionError:
        raise InputError(f"cannot read image file (permission denied): {str(path)!r}") from None
    except NotRegularFileError as error:
        raise InputError(f"{error}; only image files and folders are read") from None
    except (OSError, ValueError, SyntaxError) as error:
        raise InputError(f"damaged image file {str(path)!r}: {error}") from None


def check_anchor_number(option: str, name: str, value) -> None:
    """An anchor search argument of the command line (``--threshold``, ``--p-sample``) by the library's own
    rule: the check that ``AnchorImage.explain`` makes of its ``name`` argument, so that the command accepts
    exactly what the library accepts (both in [0, 1]; at threshold 0 any anchor passes, the empty one first)."""
    import inspect

    from imgexplain.anchors.arguments import EXPLAIN_EXTRAS
    from imgexplain.anchors.arguments import check_explain_arguments as check_search_arguments
    from imgexplain.anchors.image import AnchorImage

    defaults = {key: parameter.default for key, parameter in inspect.signature(AnchorImage.explain).parameters.items()
                if parameter.default is not inspect.Parameter.empty}
    try:
        check_search_arguments({**defaults, **EXPLAIN_EXTRAS, name: value})
    except ValueError as error:
        raise InputError(f"{option}: {error}") from None


def _check_numbers(args) -> None:
    check_anchor_number("--threshold", "threshold", args.threshold)
    check_anchor_number("--p-sample", "p_sample", args.p_sample)
    if args.target is not None and args.target < 0:
        raise InputError(f"--target: expected a class index >= 0; got {args.target}")
    if not 0 <= args.seed <= MAX_SEED:
        raise InputError(f"--seed: expected an integer in [0, 2**32 - 1]; got {args.seed}")
    if args.workers < 0:
        raise InputError(f"--workers: expected a number of workers >= 0; got {args.workers}")
    if args.timeout is not None and not 0 < args.timeout <= MAX_TIMEOUT:
        raise InputError(f"--timeout: expected a number of seconds > 0 and at most {MAX_TIMEOUT:,} (a year); "
                         f"got {args.timeout}")
    if args.timeout is not None and args.workers == 0:
        raise InputError("--timeout needs --workers 1 or more: a model call running in this process cannot be "
                         "interrupted, a worker can be stopped and replaced; --workers 1 explains one image at a "
                         "time, as --workers 0 does, with the same results")
    if args.max_pixels < 1:
        raise InputError(f"--max-pixels: expected a number of pixels >= 1; got {args.max_pixels}")


def explain_settings(args) -> dict:
    """Check every argument, file and folder of the explain command; return the settings the run uses."""
    methods = parse_methods(args.method)
    _check_numbers(args)
    if not all(args.images) or not args.out:
        raise InputError(f"{'--out' if not args.out else 'PATH'}: an empty path names no file or folder (an unset "
                         "variable?); give '.' for the current folder")
    try:
        kind = models.model_kind(args.model)
    except models.ModelError as error:
        raise InputError(f"--model: {error}") from None
    cli_options.check_options(args, methods, kind)
    if kind == "builtin":
        for option, value in (("--input-size", args.input_size), ("--preprocess", args.preprocess)):
            if value is not None:
                raise InputError(f"{option} applies to your own saved model; {BUILTIN_MODEL} has its own")
        framework = args.framework or "torch"
    else:
        framework = backends.backend_of_kind(kind).__name__.rpartition(".")[2]
        if args.framework not in (None, framework):
            raise InputError(f"--framework {args.framework}: {args.model!r} is {FILE_KINDS[kind]}, "
                             f"{backends.backend_named(framework).MODEL_TYPE}; leave --framework out")
    input_size = parse_input_size(args.input_size) if args.input_size is not None else None
    if input_size is not None and input_size[0] * input_size[1] > MAX_PIXELS:
        raise InputError(f"--input-size: {input_size[0]}x{input_size[1]} is more than {MAX_PIXELS:,} pixels; "
                         "expected the input size of an image classifier, such as 224,224")
    if kind == "torchscript" and input_size is None:
        raise InputError("--input-size H,W is needed for a TorchScript model")
    cam_methods = [method for method in methods if method != "anchor"]
    if kind != "builtin" and not backends.backend_of_kind(kind).SAVED_KINDS[kind] and cam_methods:
        raise InputError(f"--method {','.join(cam_methods)}: class activation maps need the model's layers, "
                         f"which {FILE_KINDS[kind]} does not expose; use --method anchor, or save the model "
                         f"as {' or '.join(FILE_KINDS[name] for name in cam_kinds())}")
    computed = backends.backend_named(framework).CAM_COMPUTES
    for method in (method for method in cam_methods if CAM_REGISTRY[method].needs not in computed):
        others = backends.cam_frameworks(CAM_REGISTRY[method].needs)
        raise InputError(f"--method {method}: it needs {CAM_REGISTRY[method].needs}, which {framework} models do "
                         f"not compute (only {' and '.join(others)} models do)")
    labels = None
    if args.labels is not None:
        try:
            labels = classes.read_labels(args.labels)
        except ValueError as error:
            raise InputError(f"--labels: {error}") from None
    for path in args.images:
        check_image_path(path, args.max_pixels)
    cli_options.check_folders_have_images(args.images)
    if args.workers:
        _check_address(args.address)
    return {"methods": methods, "kind": kind, "framework": framework, "input_size": input_size,
            "preprocess": args.preprocess or "none", "labels": labels, "device": check_device(args.device)}


def cam_kinds() -> list[str]:
    """The kinds of saved file whose models class activation maps can explain (the backends' declarations)."""
    return [kind for name in backends.FRAMEWORKS for kind, layers in backends.backend_named(name).SAVED_KINDS.items()
            if layers]


def _check_address(address) -> None:
    try:
        check_address(address)
    except ValueError as error:
        raise InputError(f"--address: {error}") from None


def check_device(device):
    """The --device argument, checked before any model loads (the GPU's presence is checked when it does)."""
    from imgexplain.backends.predictors import check_device as checked_device

    try:
        return checked_device(device)
    except ValueError as error:
        raise InputError(f"--device: {error}") from None
