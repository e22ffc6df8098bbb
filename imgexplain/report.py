"""The HTML report of the command line: pictures side by side, predictions, anchor quality, timings.

Pictures are PNG files next to ``report.html``, referenced by relative path, so the
folder can be moved or zipped as a whole. Everything is written into a hidden
staging folder first and renamed into place at the end (:func:`staged_output`):
an interrupted run leaves no folder that looks complete.
"""
from __future__ import annotations

import contextlib
import html
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import quote

import numpy as np

from imgexplain._version import __version__

REPORT_NAME = "report.html"
SUMMARY_NAME = "summary.json"
_GENERATOR = "imgexplain"


@dataclass
class Picture:
    """One picture of the report: a PNG file relative to the report, its title and caption."""

    path: str
    title: str
    caption: str = ""
    colormap: str | None = None  # set for heatmaps: the report draws the colour bar


@dataclass
class ImageSection:
    """What the report shows for one input image."""

    name: str
    pictures: list[Picture]
    predictions: list[tuple[str, float]]
    target: str
    timings: dict[str, float] = field(default_factory=dict)
    anchor: dict | None = None  # precision, coverage, superpixels, note
    notes: list[str] = field(default_factory=list)


def is_previous_output(folder) -> bool:
    """Whether ``folder`` is a report folder written by imgexplain (safe to replace)."""
    summary = Path(folder) / SUMMARY_NAME
    try:
        return json.loads(summary.read_text()).get("generator") == _GENERATOR
    except (OSError, ValueError, AttributeError):
        return False


def check_output_folder(folder) -> Path:
    """Return ``folder`` as a path if a report may be written there, else raise ValueError.

    The folder may be missing, empty, or an earlier imgexplain report (it is replaced
    as a whole); anything else is the user's and is left alone.
    """
    folder = Path(folder)
    if not folder.exists():
        _check_can_create(folder)
        return folder
    if not folder.is_dir():
        raise ValueError(f"--out: expected a folder, got the file {str(folder)!r}")
    if any(folder.iterdir()) and not is_previous_output(folder):
        raise ValueError(
            f"--out: {str(folder)!r} holds files that imgexplain did not write; "
            "choose an empty or new folder"
        )
    return folder


def _check_can_create(folder: Path) -> None:
    """Raise ValueError unless the nearest existing ancestor of ``folder`` is a folder we may write in."""
    ancestor = folder.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ValueError(f"--out: cannot create {str(folder)!r}: {str(ancestor)!r} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ValueError(f"--out: cannot create {str(folder)!r}: no permission to write in {str(ancestor)!r}")


@contextlib.contextmanager
def staged_output(folder):
    """Yield a staging folder next to ``folder``; on success it becomes ``folder``.

    If the body raises (or is interrupted), the staging folder is deleted and
    ``folder`` is left as it was.
    """
    folder = check_output_folder(folder).absolute()
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.partial-", dir=folder.parent))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if folder.exists():
        # Rename the old report away first so the new one takes its place in one step.
        retired = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old-", dir=folder.parent))
        os.replace(folder, retired / folder.name)
        os.replace(staging, folder)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(staging, folder)


def colorbar_css(colormap: str, steps: int = 11) -> str:
    """A CSS linear gradient that shows a matplotlib colormap from 0 (left) to 1 (right)."""
    import matplotlib

    rgba = matplotlib.colormaps[colormap](np.linspace(0.0, 1.0, steps))
    stops = ", ".join(
        f"rgb({r * 255:.0f},{g * 255:.0f},{b * 255:.0f}) {100 * i / (steps - 1):.0f}%"
        for i, (r, g, b, _) in enumerate(rgba)
    )
    return f"linear-gradient(to right, {stops})"


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-top: 1px solid #ccc; padding-top: 1em; }
table { border-collapse: collapse; margin: .5em 0; }
td, th { padding: .2em .8em; text-align: left; border-bottom: 1px solid #eee; vertical-align: top; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
.pictures { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; width: 240px; }
figure img { width: 240px; image-rendering: auto; border: 1px solid #ddd; }
figcaption { font-size: .85em; margin-top: .3em; }
figcaption b { display: block; }
.colorbar { height: 10px; margin-top: .3em; }
.colorbar-labels { display: flex; justify-content: space-between; font-size: .75em; color: #555; }
.bar { display: inline-block; height: .8em; background: #4a7bd0; vertical-align: middle; }
.note { color: #8a4b00; }
.details { display: flex; flex-wrap: wrap; gap: 3em; align-items: flex-start; }
"""


def _escape(value) -> str:
    return html.escape(str(value), quote=True)


def _picture_html(picture: Picture) -> str:
    source = quote(picture.path)
    parts = [
        "<figure>",
        f'<a href="{source}"><img src="{source}" alt="{_escape(picture.title)}"></a>',
    ]
    if picture.colormap:
        parts.append(
            f'<div class="colorbar" style="background: {colorbar_css(picture.colormap)}"></div>'
            '<div class="colorbar-labels"><span>0</span><span>importance</span><span>1</span></div>'
        )
    parts.append(f"<figcaption><b>{_escape(picture.title)}</b>{_escape(picture.caption)}</figcaption>")
    parts.append("</figure>")
    return "".join(parts)


def _predictions_html(predictions) -> str:
    rows = "".join(
        f"<tr><td>{_escape(label)}</td><td class=\"number\">{probability:.3f}</td>"
        f'<td><span class="bar" style="width: {100 * probability:.0f}px"></span></td></tr>'
        for label, probability in predictions
    )
    return f"<table><tr><th>top predictions</th><th>p</th><th></th></tr>{rows}</table>"


def _anchor_html(anchor: dict) -> str:
    rows = "".join(
        f"<tr><td>{_escape(key)}</td><td>{_escape(value)}</td></tr>" for key, value in anchor.items()
    )
    return f"<table><tr><th>anchor</th><th></th></tr>{rows}</table>"


def _timings_html(timings: dict) -> str:
    rows = "".join(
        f'<tr><td>{_escape(method)}</td><td class="number">{seconds:.2f} s</td></tr>'
        for method, seconds in timings.items()
    )
    return f"<table><tr><th>method</th><th>time</th></tr>{rows}</table>"


def _section_html(section: ImageSection) -> str:
    notes = "".join(f'<p class="note">{_escape(note)}</p>' for note in section.notes)
    details = [_predictions_html(section.predictions)]
    if section.anchor is not None:
        details.append(_anchor_html(section.anchor))
    details.append(_timings_html(section.timings))
    return (
        f"<section><h2>{_escape(section.name)}</h2>"
        f"<p>Explained class: <b>{_escape(section.target)}</b></p>{notes}"
        f'<div class="pictures">{"".join(_picture_html(p) for p in section.pictures)}</div>'
        f'<div class="details">{"".join(details)}</div></section>'
    )


def render_report(sections, arguments: dict, title: str = "imgexplain report") -> str:
    """The report as an HTML string: the arguments used, then one section per image."""
    argument_rows = "".join(
        f"<tr><td>{_escape(name)}</td><td>{_escape(value)}</td></tr>" for name, value in arguments.items()
    )
    body = "".join(_section_html(section) for section in sections)
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{_escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>{_escape(title)}</h1>"
        f"<table><tr><th>argument</th><th>value</th></tr>{argument_rows}</table>"
        f"{body}"
        f"<p><small>written by imgexplain {_escape(__version__)}</small></p>"
        "</body></html>\n"
    )


def write_report(folder, sections, arguments: dict, title: str = "imgexplain report") -> Path:
    """Write ``report.html`` and ``summary.json`` (the same facts, for scripts) into ``folder``.

    Returns the path of the report.
    """
    folder = Path(folder)
    summary = {
        "generator": _GENERATOR,
        "version": __version__,
        "arguments": arguments,
        "images": [asdict(section) for section in sections],
    }
    (folder / SUMMARY_NAME).write_text(json.dumps(summary, indent=2, default=str))
    report = folder / REPORT_NAME
    report.write_text(render_report(sections, arguments, title), encoding="utf-8")
    return report
