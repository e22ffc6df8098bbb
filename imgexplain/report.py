"""The HTML report of a dataset run, written from the results table.

``report.html`` starts with a summary (counts, errors, timings, classes, arguments). Up to
``page_size`` images follow on the same page; more go to ``report/page-0001.html`` and on, linked from
the summary, so that 10,000 images never make one huge page. Pictures are the PNG files in
``pictures/``, referenced by relative path. Every page is written to a temporary file renamed into
place: a reader sees the previous report or the new one, never half of one.
"""
from __future__ import annotations

import heapq
import html
import itertools
import json
from array import array
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator
from urllib.parse import quote

import numpy as np

from imgexplain._version import __version__
from imgexplain.report_table import TABLE_STYLE, summaries_json, table_parts
from imgexplain.results import atomic_write
from imgexplain.schema import REPORT_COLUMNS, timed_method

REPORT_NAME = "report.html"
SUMMARY_NAME = "summary.json"
PAGES = "report"
PAGE_SIZE = 100
ERRORS_SHOWN = 100  # error rows listed in the summary
OVERLAY_ALPHA = 0.65  # the heatmap overlays' opacity at 1 (render.overlay_heatmap's default)
SUMMARY_CHUNK = 256  # rows summarised for the interactive table at a time
BATCH_ROWS = 1024  # rows read at a time: the report's columns are a few KB a row (the maps stay in the table)


def colorbar_css(colormap: str, steps: int = 11, alpha_limit: float = OVERLAY_ALPHA) -> str:
    """A CSS linear gradient that shows the overlay's colours from 0 (left) to 1 (right): ``colormap``'s
    colours with the overlay's opacity, so cold values are as transparent in the bar as on the picture.

    Examples
    --------
    >>> from imgexplain.report import colorbar_css
    >>> colorbar_css("gray", steps=2, alpha_limit=0.5)
    'linear-gradient(to right, rgba(0,0,0,0.00) 0%, rgba(255,255,255,0.50) 100%)'
    """
    from imgexplain.render import overlay_colormap

    rgba = overlay_colormap(colormap, alpha_limit, steps).colors
    stops = ", ".join(
        f"rgba({r * 255:.0f},{g * 255:.0f},{b * 255:.0f},{a:.2f}) {100 * i / (steps - 1):.0f}%"
        for i, (r, g, b, a) in enumerate(rgba)
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
figure img { width: 240px; border: 1px solid #ddd; }
figcaption { font-size: .85em; margin-top: .3em; }
figcaption b { display: block; }
.colorbar { height: 10px; margin-top: .3em; border: 1px solid #ddd; }
.colorbar-labels { display: flex; justify-content: space-between; font-size: .75em; color: #555; }
.bar { display: inline-block; height: .8em; background: #4a7bd0; vertical-align: middle; }
.note, .error { color: #8a4b00; }
.details { display: flex; flex-wrap: wrap; gap: 3em; align-items: flex-start; }
.help { max-width: 60em; font-size: .9em; color: #333; }
"""

_HELP = """
<details class="help"><summary>How to read this report</summary>
<p><b>Anchor</b>: superpixels (regions of the image, numbered on the superpixels picture) that, kept as
they are, are enough for the model to keep its prediction: in perturbed copies of the image where each other
superpixel is replaced by its mean colour with probability p_sample, the prediction stays the same. The
anchor picture shows them as they are, outlined; the hatched grey rest is what the search may perturb. An
empty anchor means the prediction holds whatever is perturbed.</p>
<p><b>Precision</b>: the share of those perturbed copies, keeping the anchor, in which the model gives the
same prediction (the search asks for at least the threshold). <b>Coverage</b>: the share of all perturbed
copies that keep the anchor. For images, coverage depends only on the anchor's size: an anchor of k
superpixels has coverage (1 - p_sample)<sup>k</sup>, 0.50 for one superpixel at p_sample 0.5, whatever
the image; it says how small the anchor is, nothing more.</p>
<p><b>Heatmaps</b> (class activation maps): where in the image the model's layer found evidence for the
explained class; transparent where it found none, coloured as the bar under the picture.</p>
</details>
"""


def _escape(value) -> str:
    return html.escape(str(value), quote=True)


def _table(header, rows) -> str:
    head = "".join(f"<th>{_escape(cell)}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _picture_html(picture: dict, root: str) -> str:
    source = root + quote(picture["path"])
    parts = [f'<figure><a href="{source}"><img src="{source}" alt="{_escape(picture["title"])}"></a>']
    if picture.get("colormap"):
        parts.append(f'<div class="colorbar" style="background: {colorbar_css(picture["colormap"])}"></div>'
                     '<div class="colorbar-labels"><span>0</span><span>importance</span><span>1</span></div>')
    parts.append(f"<figcaption><b>{_escape(picture['title'])}</b>{_escape(picture['caption'])}</figcaption>"
                 "</figure>")
    return "".join(parts)


def _coverage_note(row: dict, p_sample) -> str | None:
    """Say so when the coverage is what any anchor of that size gets: (1 - p_sample) ** size."""
    if p_sample is None or row["coverage"] is None or not row["anchor"]:
        return None
    size, expected = len(row["anchor"]), (1 - float(p_sample)) ** len(row["anchor"])
    if abs(row["coverage"] - expected) > 0.05:
        return None
    return (f"coverage {row['coverage']:.2f} is (1 - p_sample)^{size} = {expected:.2f}: what any anchor of "
            f"{size} superpixel{'s' if size > 1 else ''} gets, whatever the image")


def _section_html(row: dict, root: str, p_sample=None, multilabel=False) -> str:
    name = f"<h2>{_escape(row['image'])}</h2>"
    if row["status"] != "ok":
        return f'<section>{name}<p class="error">{_escape(row["error_type"])}: {_escape(row["error"])}</p></section>'
    notes = []
    if row["anchor"] is not None and row["predicted"] != row["target"] and not multilabel:
        notes.append(f"The anchor explains the predicted class {row['predicted']}, not the --target {row['target']}.")
    predictions = _table(["top predictions", "p", ""], [
        (_escape(f"{top['index']} {top['label']}"), f"{top['p']:.3f}",
         f'<span class="bar" style="width: {100 * top["p"]:.0f}px"></span>') for top in row["top5"]])
    details = [predictions]
    if row["anchor"] is not None:
        ids = ", ".join(f"#{k}" for k in row["anchor"]) or "none (empty anchor)"
        facts = [("precision", f"{row['precision']:.3f}"), ("coverage", f"{row['coverage']:.3f}"),
                 ("superpixel ids in the anchor", ids), ("images the model saw", row["num_preds"])]
        if not row["anchor_found"]:
            facts.append(("note", "no anchor reached the threshold; this is the best one found"))
        trivial = _coverage_note(row, p_sample)
        if trivial:
            facts.append(("note", trivial))
        details.append(_table(["anchor", ""], [(_escape(k), _escape(v)) for k, v in facts]))
    timings = [(_escape(timed_method(key)), f"{value:.2f} s") for key, value in row.items()
               if timed_method(key) and value is not None]
    details.append(_table(["method", "time"], timings))
    return (f"<section>{name}<p>Explained class: <b>{_escape(row['target'])} {_escape(row['label'])}</b></p>"
            + "".join(f'<p class="note">{_escape(note)}</p>' for note in notes)
            + f'<div class="pictures">{"".join(_picture_html(p, root) for p in row["pictures"])}</div>'
            + f'<div class="details">{"".join(details)}</div></section>')


def summarize(rows: Iterable[dict], arguments: dict) -> dict:
    """Counts, errors, timings and classes of the rows, as numbers (what ``summary.json`` holds).

    One pass over ``rows``, which may be a stream: only counters and one number per row and timing are kept.
    """
    images = 0
    error_types, classes = Counter(), Counter()
    timings: dict[str, array] = {}
    precision, coverage = array("d"), array("d")
    for row in rows:
        images += 1
        if row["status"] != "ok":
            error_types[row["error_type"]] += 1
            continue
        classes[f"{row['target']} {row['label']}"] += 1
        for key, value in row.items():
            if (key == "seconds" or timed_method(key)) and value is not None:
                timings.setdefault(key, array("d")).append(value)
        if row.get("precision") is not None:
            precision.append(row["precision"])
            coverage.append(row["coverage"])
    ok = images - sum(error_types.values())
    return {
        "generator": "imgexplain", "version": __version__, "arguments": arguments,
        "images": images, "ok": ok, "errors": images - ok, "error_types": dict(error_types),
        "seconds": {_timing_name(key): {"total": float(np.sum(values)), "median": float(np.median(values)),
                                        "max": float(np.max(values))} for key, values in sorted(timings.items())},
        "classes": dict(classes.most_common()),
        "precision": {"median": float(np.median(precision))} if precision else None,
        "coverage": {"median": float(np.median(coverage))} if coverage else None,
    }


def _timing_name(column: str) -> str:
    """'seconds' (the whole image) -> 'image'; 'seconds_anchor' -> 'anchor'."""
    return timed_method(column) or "image"


def _summary_html(summary: dict, errors: list[dict], arguments: dict) -> str:
    """The summary's tables; ``errors``: the first error rows (up to :data:`ERRORS_SHOWN`)."""
    counts = _table(["images", "explained", "errors"], [(summary["images"], summary["ok"], summary["errors"])])
    timings = _table(["time per image", "median", "max", "total"], [
        (_escape("whole image" if key == "image" else key), f"{t['median']:.2f} s",
         f"{t['max']:.2f} s", f"{t['total']:.1f} s") for key, t in summary["seconds"].items()])
    classes = _table(["explained class", "images"], [
        (_escape(name), count) for name, count in list(summary["classes"].items())[:20]])
    error_table = _table(["image", "error"], [
        (_escape(row["image"]), _escape(f"{row['error_type']}: {row['error']}")) for row in errors])
    if summary["errors"] > len(errors):
        error_table += f"<p>and {summary['errors'] - len(errors)} more errors (see the table)</p>"
    argument_table = _table(["argument", "value"], [(_escape(k), _escape(v)) for k, v in arguments.items()
                                                    if v is not None])
    return (f'<div class="details">{counts}{timings}{classes}</div>'
            + (f"<h2>errors</h2>{error_table}" if errors else "") + argument_table)


def _page(title: str, parts: Iterable[str]) -> Iterator[str]:
    """A whole page, in pieces: ``parts`` make its body."""
    yield ("<!DOCTYPE html>\n"
           f'<html lang="en"><head><meta charset="utf-8"><title>{_escape(title)}</title>'
           f"<style>{_STYLE}{TABLE_STYLE}</style></head><body><h1>{_escape(title)}</h1>")
    yield from parts
    yield f"<p><small>written by imgexplain {_escape(__version__)}</small></p></body></html>\n"


def _order(row: dict) -> tuple:
    return row["index"], row["image"]


def _rows(table, columns, names, batch_size, first=None, last=None) -> Iterator[dict]:
    """The rows of ``table`` (``columns`` only) whose image is in ``names`` (all if None), read in batches.

    ``first``, ``last``: only rows whose index lies between them (inclusive), filtered before the
    batch becomes Python objects.
    """
    import pyarrow.compute as pc

    for batch in table.batches(columns, batch_size):
        if first is not None:
            index = batch.column("index")
            batch = batch.filter(pc.and_(pc.greater_equal(index, first), pc.less_equal(index, last)))
        for row in batch.to_pylist():
            if names is None or row["image"] in names:
                yield row


def write_report(out, table, arguments: dict, names=None, title: str = "imgexplain report",
                 page_size: int = PAGE_SIZE, batch_size: int = BATCH_ROWS, reserve=None) -> Path:
    """Write ``report.html`` (and its pages) and ``summary.json`` into ``out`` from the results ``table``.

    ``names``: the images to show (default: every row, earlier runs' into the same folder too).
    ``report.html`` holds the summary, how to read it, and the interactive table of every image
    (:mod:`~imgexplain.report_table`: sort, filter, search, open an image's pictures). The table is read
    ``batch_size`` rows at a time, a few times over (the order of the images, the summary, the
    interactive table's summaries, then a page at a time): memory holds a batch, a page of rows and a
    short summary per image. Returns the report's path. ``reserve``: called with each entry of ``out``
    (a name) before it is written (:meth:`imgexplain.results.OutputFolder.reserve`).
    """
    reserve = reserve or (lambda name: None)
    out = Path(out)
    columns = [name for name in REPORT_COLUMNS if name in table.schema.names]
    columns += [name for name in table.schema.names if timed_method(name)]
    order = sorted(_order(row) for row in _rows(table, ["index", "image"], names, batch_size))
    summary = summarize(_rows(table, columns, names, batch_size), arguments)
    summary["quarantined"] = [str(path) for path in table.quarantined_parts()]
    reserve(SUMMARY_NAME)
    atomic_write(out / SUMMARY_NAME, json.dumps(summary, indent=2, default=str))
    error_columns = ["index", "image", "status", "error_type", "error"]
    errors = heapq.nsmallest(ERRORS_SHOWN, (row for row in _rows(table, error_columns, names, batch_size)
                                            if row["status"] != "ok"), key=_order)
    p_sample, multilabel = arguments.get("p_sample"), "multilabel" in arguments  # a multi-label anchor: the target's
    pages, written, sections = out / PAGES, set(), []
    if len(order) <= page_size:
        rows = sorted(_rows(table, columns, names, batch_size), key=_order)
        sections = ["<h2>images</h2>"] + [_section_html(row, "", p_sample, multilabel) for row in rows]
    else:
        reserve(PAGES)
        pages.mkdir(exist_ok=True)
        links = []
        for number, (start, chunk) in enumerate(_sorted_chunks(table, columns, names, batch_size, order, page_size),
                                                start=1):
            name, shown = f"page-{number:04d}.html", f"images {start + 1} to {start + len(chunk)}"
            navigation = f'<p><a href="../{REPORT_NAME}">summary</a></p>'
            sections = [_section_html(row, "../", p_sample, multilabel) for row in chunk]
            atomic_write(pages / name, _page(f"{title}: {shown}", [navigation] + sections))
            links.append(f'<li><a href="{PAGES}/{name}">{shown}</a></li>')
            written.add(name)
        sections = [f"<h2>images</h2><ul>{''.join(links)}</ul>"]
    json_chunks = (summaries_json(chunk) for _, chunk in
                   _sorted_chunks(table, columns, names, batch_size, order, SUMMARY_CHUNK))
    report = out / REPORT_NAME
    reserve(REPORT_NAME)
    atomic_write(report, _page(title, itertools.chain([_summary_html(summary, errors, arguments), _HELP],
                                                     table_parts(json_chunks), sections)))
    for stale in pages.glob("page-*.html") if pages.is_dir() else ():
        if stale.name not in written:  # pages of an earlier, longer report (ours: the folder is in the manifest)
            stale.unlink()
    return report


def _sorted_chunks(table, columns, names, batch_size, order, size) -> Iterator[tuple[int, list[dict]]]:
    """``(start, rows)`` for successive ``size`` keys of ``order``, each chunk's rows read by index range."""
    for start in range(0, len(order), size):
        keys = order[start:start + size]
        wanted = set(keys)
        yield start, sorted((row for row in _rows(table, columns, names, batch_size, keys[0][0], keys[-1][0])
                             if _order(row) in wanted), key=_order)
