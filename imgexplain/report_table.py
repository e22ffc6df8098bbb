"""The report's interactive table: every image of the run in one page, to sort, filter, search and open.

The rows' summaries (name, status, class, precision, coverage, times, pictures) are embedded in the page
as JSON and drawn by a small script of the page's own: no server, no network, no library, so the page
works from ``file://`` and offline. The table shows :data:`ROWS_SHOWN` matching rows at a time, so that
10,000 images sort and filter in a fraction of a second (``bench/report_page.py``).
"""
from __future__ import annotations

import json
from pathlib import PurePath
from typing import Iterable, Iterator

from imgexplain.schema import timed_method

ROWS_SHOWN = 200
TABLE_ID = "images"


def row_summary(row: dict) -> dict:
    """What the table knows of one results row: short keys, numbers rounded for the page.

    Parameters
    ----------
    row : dict
        A row of the results table (``image``, ``status``, ``target``, ``label``, ``precision``,
        ``coverage``, ``seconds``, ``seconds_<method>``, ``pictures``, ...).

    Returns
    -------
    dict

    Examples
    --------
    >>> from imgexplain.report_table import row_summary
    >>> row_summary({"image": "/data/cat.png", "status": "ok", "target": 3, "label": "cat", "precision": 0.96,
    ...              "coverage": 0.25, "seconds": 1.5, "seconds_anchor": 1.2, "pictures": []})["class"]
    '3 cat'
    """
    def rounded(value, digits=3):
        return None if value is None else round(float(value), digits)

    ok = row["status"] == "ok"
    return {
        "name": PurePath(row["image"]).name, "path": row["image"], "status": row["status"],
        "class": f"{row['target']} {row['label']}" if ok else "",
        "precision": rounded(row.get("precision")), "coverage": rounded(row.get("coverage")),
        "seconds": rounded(row.get("seconds"), 2),
        "methods": {timed_method(key): rounded(value, 2) for key, value in row.items()
                    if timed_method(key) and value is not None},
        "anchor": row.get("anchor"),
        "error": "" if ok else f"{row.get('error_type')}: {row.get('error')}",
        "pictures": [[picture["path"], picture["title"], picture["caption"]] for picture in row.get("pictures") or []],
    }


def summaries_json(rows: Iterable[dict]) -> str:
    """The rows' summaries (:func:`row_summary`) as JSON objects separated by commas, safe inside a
    ``<script>`` element (no ``<`` at all).

    Examples
    --------
    >>> from imgexplain.report_table import summaries_json
    >>> summaries_json([{"image": "<b>.png", "status": "error", "error_type": "OSError", "error": "x"}])[:38]
    '{"name":"\\\\u003cb>.png","path":"\\\\u003cb'
    """
    return ",".join(json.dumps(row_summary(row), separators=(",", ":")) for row in rows).replace("<", "\\u003c")


def table_parts(json_chunks: Iterable[str], picture_root: str = "") -> Iterator[str]:
    """The controls, the table and its script, in pieces (for a page written as it is made).

    Parameters
    ----------
    json_chunks : iterable of str
        What :func:`summaries_json` returns for successive chunks of rows, in the order shown first.
    picture_root : str
        Prefix of the pictures' relative paths.

    Yields
    ------
    str
    """
    yield (_CONTROLS + f'<table id="{TABLE_ID}"><thead><tr>'
           + "".join(f'<th data-key="{key}" title="sort">{title}</th>' for key, title in _COLUMNS)
           + '</tr></thead><tbody></tbody></table><p id="shown"></p><script type="application/json" id="rows">[')
    separator = ""
    for chunk in json_chunks:
        if chunk:
            yield separator + chunk
            separator = ","
    yield (f"]</script><script>const PICTURE_ROOT = {json.dumps(picture_root)}; const ROWS_SHOWN = {ROWS_SHOWN};\n"
           + _SCRIPT + "</script>")


_COLUMNS = (("name", "image"), ("status", "status"), ("class", "explained class"), ("precision", "precision"),
            ("coverage", "coverage"), ("seconds", "time (s)"))

_CONTROLS = """
<h2>all images</h2>
<p>Click a column's title to sort by it (again: the other way); click a row to open its pictures, the
methods side by side.</p>
<form id="filters" onsubmit="return false">
<label>search file names <input id="search" type="search" placeholder="part of a name"></label>
<label>status <select id="status"><option value="">any</option><option>ok</option><option>error</option>
</select></label>
<label>class <input id="class" list="classes" placeholder="any"><datalist id="classes"></datalist></label>
<label>precision &ge; <input id="precision" type="number" min="0" max="1" step="0.05"></label>
<label>coverage &ge; <input id="coverage" type="number" min="0" max="1" step="0.05"></label>
<label>time (s) &ge; <input id="seconds" type="number" min="0" step="0.5"></label>
</form>
"""

TABLE_STYLE = """
#filters { display: flex; flex-wrap: wrap; gap: .5em 1.5em; margin: .5em 0; font-size: .9em; }
#filters input[type=number] { width: 5em; }
#images th { cursor: pointer; user-select: none; background: #f4f4f4; }
#images th.sorted-up::after { content: " \\25B2"; } #images th.sorted-down::after { content: " \\25BC"; }
#images tbody tr.row { cursor: pointer; } #images tbody tr.row:hover { background: #f0f5ff; }
#images td.error { color: #8a4b00; }
#images tr.open td { background: #fafafa; }
"""

_SCRIPT = r"""
(function () {
  "use strict";
  const rows = JSON.parse(document.getElementById("rows").textContent);
  const body = document.querySelector("#images tbody");
  const shown = document.getElementById("shown");
  const field = (id) => document.getElementById(id);
  const numeric = { precision: true, coverage: true, seconds: true };
  let sortKey = null, sortUp = true, opened = null;

  const classes = Array.from(new Set(rows.map((row) => row.class).filter(Boolean))).sort();
  const list = field("classes");
  for (const name of classes) {
    const option = document.createElement("option");
    option.value = name;
    list.appendChild(option);
  }

  function number(id) { const text = field(id).value; return text === "" ? null : Number(text); }

  function matching() {
    const search = field("search").value.trim().toLowerCase();
    const status = field("status").value, wanted = field("class").value.trim().toLowerCase();
    const limits = { precision: number("precision"), coverage: number("coverage"), seconds: number("seconds") };
    return rows.filter((row) => {
      if (search && !row.name.toLowerCase().includes(search)) return false;
      if (status && row.status !== status) return false;
      if (wanted && !row.class.toLowerCase().includes(wanted)) return false;
      for (const key in limits) {
        if (limits[key] !== null && !(row[key] !== null && row[key] >= limits[key])) return false;
      }
      return true;
    });
  }

  function compare(a, b) {
    const x = a[sortKey], y = b[sortKey];
    if (x === y) return 0;
    if (x === null || x === undefined) return 1;
    if (y === null || y === undefined) return -1;
    const order = numeric[sortKey] ? x - y : String(x).localeCompare(String(y));
    return sortUp ? order : -order;
  }

  function cell(tr, text, className) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "" : text;
    if (className) td.className = className;
    tr.appendChild(td);
  }

  function paragraph(parent, text, className) {
    const p = document.createElement("p");
    p.textContent = text;
    if (className) p.className = className;
    parent.appendChild(p);
  }

  function details(row) {
    const tr = document.createElement("tr"); tr.className = "open";
    const td = document.createElement("td"); td.colSpan = 6;
    paragraph(td, row.path);
    if (row.error) paragraph(td, row.error, "error");
    const pictures = document.createElement("div"); pictures.className = "pictures";
    for (const [source, title, caption] of row.pictures) {
      if (/^[a-z][a-z0-9+.-]*:|^\/|\.\./i.test(source)) continue;  // only pictures inside OUT
      const figure = document.createElement("figure");
      const link = document.createElement("a"); link.href = PICTURE_ROOT + encodeURI(source);
      const img = document.createElement("img"); img.src = link.href; img.alt = title; img.loading = "lazy";
      link.appendChild(img); figure.appendChild(link);
      const text = document.createElement("figcaption");
      const bold = document.createElement("b"); bold.textContent = title; text.appendChild(bold);
      text.appendChild(document.createTextNode(caption)); figure.appendChild(text);
      pictures.appendChild(figure);
    }
    td.appendChild(pictures);
    const times = Object.entries(row.methods).map(([method, seconds]) => method + " " + seconds + " s").join(", ");
    if (times) paragraph(td, "time per method: " + times);
    tr.appendChild(td);
    return tr;
  }

  function draw() {
    const found = matching();
    if (sortKey) found.sort(compare);
    const fragment = document.createDocumentFragment();
    for (const row of found.slice(0, ROWS_SHOWN)) {
      const tr = document.createElement("tr"); tr.className = "row"; tr.dataset.path = row.path;
      cell(tr, row.name); cell(tr, row.status, row.status === "ok" ? "" : "error");
      cell(tr, row.status === "ok" ? row.class : row.error, row.status === "ok" ? "" : "error");
      cell(tr, row.precision); cell(tr, row.coverage); cell(tr, row.seconds);
      tr.addEventListener("click", () => { opened = opened === row.path ? null : row.path; draw(); });
      fragment.appendChild(tr);
      if (opened === row.path) fragment.appendChild(details(row));
    }
    body.replaceChildren(fragment);
    shown.textContent = found.length > ROWS_SHOWN
      ? "showing the first " + ROWS_SHOWN + " of " + found.length + " matching images (of " + rows.length
        + "); narrow the filters to see others"
      : found.length + " matching images (of " + rows.length + ")";
  }

  for (const th of document.querySelectorAll("#images th")) {
    th.addEventListener("click", () => {
      sortUp = sortKey === th.dataset.key ? !sortUp : true;
      sortKey = th.dataset.key;
      for (const other of document.querySelectorAll("#images th")) other.className = "";
      th.className = sortUp ? "sorted-up" : "sorted-down";
      draw();
    });
  }
  for (const control of document.querySelectorAll("#filters input")) control.addEventListener("input", draw);
  field("status").addEventListener("change", draw);
  draw();
})();
"""
