"""Explain a stream of images: files and folders or arrays in, results out as each image finishes.

:func:`explain_dataset` is the one code path of the command line and of :func:`explain_many`. With
``out`` it appends a row per image to the results table (``OUT/results.parquet``, see
:mod:`imgexplain.results`) the moment the image is done, and skips the images that table already holds
(same path, same content, same arguments) with an 'ok' row: a run killed at any moment resumes where it
stopped, losing at most the images in flight, and images that gave an error row are tried again.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from imgexplain import distributed, ray_cluster
from imgexplain._checks import check_number
from imgexplain._files import printable
from imgexplain.progress import progress_bar
from imgexplain.results import TABLE_NAME, OutputFolder, ResultsTable, content_hash, file_hash
from imgexplain.schema import table_schema
from imgexplain.stream import RowWriter, run_batched
from imgexplain.tasks import Result, Task

if TYPE_CHECKING:
    import pyarrow

__all__ = ["Result", "explain_dataset", "explain_many", "list_images"]


def image_extensions() -> set[str]:
    from PIL import Image

    return {extension.lower() for extension in Image.registered_extensions()}


def list_images(paths: Iterable[str | os.PathLike], skip: Callable[[Path], bool] = lambda path: False) -> list[Path]:
    """The image files of ``paths``: files as given, folders walked recursively in name order.

    In folders, only files with an image extension that Pillow knows are taken (hidden ones are not);
    whether they hold an image is found when they are read.
    """
    extensions = image_extensions()
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            for root, folders, files in os.walk(path):
                folders[:] = sorted(name for name in folders if not name.startswith(".")
                                    and not skip(Path(root, name)))
                found.extend(Path(root, name) for name in sorted(files)
                             if not name.startswith(".") and Path(name).suffix.lower() in extensions
                             and not skip(Path(root, name)))
        else:
            found.append(path)
    return found


def _named_items(images, skip) -> list[tuple[str, Any]]:
    """(name, source) pairs: a path, an array, or a (name, array) pair each; a file named twice is taken once.

    A file's name is its absolute path, made printable (:func:`~imgexplain._files.printable`); two paths
    of one file (a relative and an absolute path, a folder and a file in it, links) are the same image.
    """
    items, seen = [], set()
    for index, image in enumerate(images):
        if isinstance(image, (str, os.PathLike)):
            if not os.fspath(image):
                raise ValueError("images: an empty path names no file or folder (an unset variable?); "
                                 "give '.' for the current folder")
            for path in list_images([image], skip):
                if os.path.realpath(path) not in seen:
                    seen.add(os.path.realpath(path))
                    items.append((printable(str(path.absolute())), path))
        elif isinstance(image, tuple) and len(image) == 2 and isinstance(image[0], str):
            items.append(image)
        else:
            items.append((f"image {index}", image))
    return items


def _digest(source) -> str:
    if isinstance(source, Path):
        try:
            return file_hash(source)
        except OSError:
            return ""  # the explainer reports why it cannot be read
    array = np.ascontiguousarray(source)
    return content_hash(f"{array.shape}{array.dtype}".encode() + array.tobytes())


def _tasks(items, digests, done, on_skip) -> Iterator[Task]:
    """A task per item not ``done``; ``digests``: the content hashes already known, by name."""
    for index, (name, source) in enumerate(items):
        digest = digests[name] if name in digests else _digest(source)
        if (name, digest) in done:
            on_skip()
        else:
            yield Task(index, str(source) if isinstance(source, Path) else source,
                       {"image": name, "content_hash": digest})


def explain_dataset(images: Iterable, make_explainer: Callable, *,
                    out: str | os.PathLike | OutputFolder | None = None, schema: pyarrow.Schema | None = None,
                    arguments: dict | None = None, n_workers: int | None = 0, timeout: float | None = None,
                    address: str | None = None, cpus_per_worker: float = 1, progress: bool = True,
                    explain_kwargs: dict | None = None) -> Iterator[Result]:
    """Explain every image with ``make_explainer().explain(image, **explain_kwargs)``; yield results as they finish.

    Parameters
    ----------
    images : iterable
        Image files and folders (read recursively), arrays, or ``(name, array)`` pairs. Files are
        passed to ``explain`` as paths: the explainer decodes them, once.
    make_explainer : callable
        Takes no argument and returns an object with an ``explain(image, **kwargs)`` method. It is
        called once per worker, so the model is loaded once per worker.
    out : str, Path or OutputFolder, optional
        Folder of the results table. ``explain`` must then return a dict of the columns of ``schema``
        (a ``pyarrow.Schema``); its optional ``'files'`` entry, ``{relative path: bytes}``, is written
        into ``out`` before the row. Images with an 'ok' row in the table of the same ``arguments`` are
        skipped; those with an error row or new content are explained again, their new row replacing the
        old one and the pictures it named. A table of other arguments is refused (ValueError). A run
        that writes no row makes no table folder (and without images, no new ``out``).
    n_workers : int or None
        0: in this process. N: N Ray workers (actors). None: one per CPU.
    timeout : float, optional
        Seconds an image may take on a worker before it is recorded as a ``TimeoutError`` (needs workers).
    address : str, optional
        A Ray cluster to join, ``host:port`` (default: ``RAY_ADDRESS``, else a private Ray started on this
        machine for the call and stopped after it). ``n_workers`` is capped at its free CPUs, with a warning.
    schema : pyarrow.Schema, optional
        The columns of the rows, needed with `out`.
    arguments : dict, optional
        What the run was made with; a table of other arguments is refused.
    cpus_per_worker : float
        CPUs Ray reserves for each worker.
    progress : bool
        Show a progress bar (tqdm).
    explain_kwargs : dict, optional
        Keyword arguments of every ``explain`` call.

    Yields
    ------
    Result
        One per image explained now, in finishing order. Errors are results, never exceptions; a worker
        that dies is replaced and its images retried once each before they become error results.

    Raises
    ------
    TypeError
        `make_explainer` is not callable, or `n_workers`, `timeout` or `cpus_per_worker` is not a number.
    ValueError
        `n_workers`, `timeout` (also infinite) or `cpus_per_worker` out of range, an empty path, `out`
        without `schema`, a results table of other arguments (:class:`~imgexplain.results.OutputError`:
        also a damaged, linked or locked OUT) or of another schema version
        (:class:`~imgexplain.schema.SchemaVersionError`), or a Ray cluster `address` that does not answer
        within seconds.

    See Also
    --------
    explain_many : a list of arrays in, the list of their explanations out.

    Examples
    --------
    >>> import numpy as np
    >>> class Brightness:  # an explainer: anything with an explain(image) method
    ...     def explain(self, image):
    ...         if image.max() > 1:
    ...             raise ValueError("pixels above 1")
    ...         return float(image.mean())
    >>> from imgexplain import explain_dataset
    >>> images = [("dark", np.zeros((2, 2))), ("bright", np.ones((2, 2))), ("wrong", np.full((2, 2), 9.0))]
    >>> for result in explain_dataset(images, Brightness, progress=False):
    ...     print(result.index, result.image, result.status, result.value, result.error)
    0 dark ok 0.0 None
    1 bright ok 1.0 None
    2 wrong error None pixels above 1
    """
    if not callable(make_explainer):
        raise TypeError(f"make_explainer must be a callable that returns an explainer; "
                        f"got {type(make_explainer).__name__}")
    distributed.check_workers(n_workers, timeout)
    if timeout is not None and not timeout < float("inf"):
        raise ValueError(f"timeout must be a finite number of seconds; got {timeout!r}")
    check_number(cpus_per_worker, "cpus_per_worker", 0, inclusive=False)
    if n_workers != 0:
        ray_cluster.check_address(address)  # before anything is written
    folder = table = None
    if out is not None:
        if schema is None:
            raise ValueError("schema (the pyarrow schema of the explainer's rows) is needed with out")
        folder = out if isinstance(out, OutputFolder) else OutputFolder(out, (), arguments or {})
    items = _named_items(images, skip=folder.owns if folder is not None else lambda path: False)
    if not items and folder is not None and folder is not out and not folder.path.exists():
        folder = None  # nothing to explain: no OUT made for it
    digests, done = {}, set()
    if folder is not None:
        folder.claim()
        table = results_table(folder, schema)
        rows = table.keys()
        digests = {name: _digest(source) for name, source in items if name in rows}
        # An image whose row is an error, or of other content, is explained again: its row (and pictures) go first.
        done = {(name, digest) for name, digest in digests.items() if rows[name] == ("ok", digest)}
        table.drop({name for name in digests if (name, digests[name]) not in done}, folder.remove_written)
    stream = _stream(items, digests, done, make_explainer, table, n_workers, timeout, address,
                     float(cpus_per_worker), progress, dict(explain_kwargs or {}), folder)
    return folder.holding(stream) if folder is not None and folder is not out else stream


def results_table(folder: OutputFolder, schema) -> ResultsTable:
    """The results table in ``folder`` for rows of the explainer's ``schema`` (its folder made with its first row)."""
    return ResultsTable(folder.reserve(TABLE_NAME), table_schema(schema))


def _stream(items, digests, done, make_explainer, table, n_workers, timeout, address, cpus_per_worker,
            progress, explain_kwargs, folder) -> Iterator[Result]:
    writer = RowWriter(table, folder) if table is not None else None
    keep = True  # the rows explained are appended at the end: not after a failure (a full disk)
    try:
        with progress_bar(len(items), "explaining", enabled=progress) as bar:
            tasks = _tasks(items, digests, done, on_skip=bar.update)
            if n_workers == 0:
                results = run_batched(make_explainer, tasks, explain_kwargs,
                                       report_progress=bar.set_postfix_str if progress else None)
            else:
                n_workers = n_workers or distributed.default_workers(cpus_per_worker)
                results = distributed.run_on_ray(make_explainer, tasks, explain_kwargs, n_workers=n_workers,
                                                  timeout=timeout, cpus_per_worker=cpus_per_worker,
                                                  address=address)
            for result in results:
                if writer is not None:
                    _record(writer, folder, result)
                bar.update()
                yield result
    except (KeyboardInterrupt, GeneratorExit, SystemExit):  # interrupted (SIGTERM under Ray is a SystemExit)
        raise
    except BaseException:
        keep = False
        raise
    finally:
        if writer is not None:
            writer.close(flush=keep)
    if table is not None:
        table.compact()


def _record(writer: RowWriter, folder: OutputFolder, result: Result) -> None:
    row = dict(result.value) if result.status == "ok" else {}
    files = row.pop("files", {})
    for path in files:
        folder.reserve(Path(path).parts[0])  # recorded in the manifest before it is created
    row.update(result.extra, index=result.index, status=result.status, error_type=result.error_type,
               error=None if result.error is None else printable(result.error), seconds=result.seconds,
               fingerprint=folder.fingerprint)
    writer.add(row, files)


def explain_many(make_explainer: Callable, images: Sequence[np.ndarray] | np.ndarray, *, n_workers: int | None = None,
                 cpus_per_worker: float = 1, timeout: float | None = None, errors: str = "raise",
                 progress: bool = True, **explain_kwargs: Any) -> list:
    """Explain every image with ``make_explainer().explain(image, **explain_kwargs)``, in parallel.

    A list-in, list-out wrapper of :func:`explain_dataset`: the explanations in the order of ``images``.
    ``errors='raise'`` raises the first error as itself (its type and message, with a note naming the
    image's index; a :class:`~imgexplain.distributed.WorkerError` when it could not be pickled), and
    stops the workers. ``errors='return'`` puts the exception in that image's place and returns every
    other explanation; a dead worker's image is retried once, an image past ``timeout`` seconds is a
    ``TimeoutError``. ``n_workers`` 0 explains in this process, None uses one Ray worker per CPU.

    Parameters
    ----------
    make_explainer : callable
        Takes no argument and returns an object with an ``explain(image, **kwargs)`` method; called
        once per worker.
    images : sequence of ndarray or (N, H, W[, C]) ndarray
        The images.
    n_workers : int or None
        0: in this process. N: N Ray workers. None: one per CPU.
    cpus_per_worker, timeout, progress :
        As in :func:`explain_dataset`.
    errors : {"raise", "return"}
        Raise the first error, or return it in the image's place.
    **explain_kwargs
        Keyword arguments of every ``explain`` call.

    Returns
    -------
    list
        One explanation (or, with ``errors='return'``, exception) per image, in the order of `images`.

    Raises
    ------
    TypeError
        `images` is not a sequence or an array.
    ValueError
        No images, a wrong `errors`, or as in :func:`explain_dataset`.
    Exception
        With ``errors='raise'``, the first exception an image raised, with a note naming the image.

    Examples
    --------
    >>> import numpy as np
    >>> class Brightness:  # an explainer: anything with an explain(image) method
    ...     def explain(self, image):
    ...         if image.max() > 1:
    ...             raise ValueError("pixels above 1")
    ...         return float(image.mean())
    >>> from imgexplain import explain_many
    >>> explain_many(Brightness, [np.zeros((2, 2)), np.ones((2, 2))], n_workers=0, progress=False)
    [0.0, 1.0]
    >>> explain_many(Brightness, [np.full((2, 2), 9.0)], n_workers=0, progress=False, errors="return")
    [ValueError('pixels above 1')]
    """
    if errors not in ("raise", "return"):
        raise ValueError(f"errors must be 'raise' or 'return'; got {errors!r}")
    images = _check_images(images)
    explanations = [None] * len(images)
    results = explain_dataset(images, make_explainer, n_workers=n_workers, timeout=timeout,
                              cpus_per_worker=cpus_per_worker, progress=progress, explain_kwargs=explain_kwargs)
    with contextlib.closing(results):
        for result in results:
            if result.status == "ok":
                explanations[result.index] = result.value
                continue
            error = result.exception or _lost_exception(result)
            if errors == "raise":
                error.add_note(f"raised while explaining image {result.index}")
                raise error
            explanations[result.index] = error
    return explanations


def _lost_exception(result: Result) -> BaseException:
    if result.error_type == "TimeoutError":
        return TimeoutError(result.error)
    return distributed.WorkerError(f"{result.error_type}: {result.error}")


def _check_images(images) -> list[np.ndarray]:
    if isinstance(images, np.ndarray):
        if images.ndim < 3:
            raise ValueError(f"images must be a sequence of images or an (N, H, W[, C]) array; "
                             f"got an array of shape {images.shape}")
        images = list(images)
    elif isinstance(images, (str, bytes)) or not isinstance(images, Sequence):
        raise TypeError(f"images must be a sequence of images or an (N, H, W[, C]) array; "
                        f"got {type(images).__name__}")
    if len(images) == 0:
        raise ValueError("images is empty: there is nothing to explain")
    return [np.asarray(image) for image in images]
