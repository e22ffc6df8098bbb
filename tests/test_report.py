"""The HTML report and its staged writing (the pictures' own tests: tests/test_render_anchors.py)."""
import json
import re
from html.parser import HTMLParser

import matplotlib
import numpy as np
import pytest

from imgexplain import report, schema


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sources, self.styles = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.sources.append(attrs["src"])
        if "style" in attrs:
            self.styles.append(attrs["style"])


def _table_with_rows(tmp_path, n):
    from imgexplain import pipeline, schema
    from imgexplain.results import OutputFolder

    folder = OutputFolder(tmp_path / "out", ["report.html", "report", "summary.json"], {"seed": 0})
    folder.claim()
    table = pipeline.results_table(folder, schema.row_schema(["anchor", "gradcam"]))
    rows = []
    for k in range(n):
        row = {"image": f"<cat {k}>.png", "content_hash": str(k), "index": k, "status": "ok", "seconds": 0.5 + k,
               "target": 285, "label": "Egyptian_cat", "predicted": 285,
               "top5": [{"index": 285, "label": "Egyptian_cat", "p": 0.8}], "anchor": [12, 3], "precision": 0.97,
               "coverage": 0.31, "num_preds": 700, "anchor_found": True, "seconds_anchor": 0.25,
               "seconds_gradcam": 0.125, "gradcam": [[0.0, 1.0]], "layer": "features",
               "pictures": [{"path": f"pictures/my cat#{k}.png", "title": "gradcam", "caption": "7x7 map",
                             "colormap": "viridis"}]}
        if k == n - 1:
            row = {"image": "broken.jpg", "content_hash": "x", "index": k, "status": "error",
                   "error_type": "OSError", "error": "image file is truncated", "seconds": 0.0}
        rows.append(row)
    table.append(rows)
    return folder.path, table


def test_report_escapes_text_quotes_paths_and_shows_anchor_ids_and_colour_bars(tmp_path):
    out, table = _table_with_rows(tmp_path, 3)
    path = report.write_report(out, table, {"seed": 0}, title="my <title>")
    page = path.read_text()
    assert "<cat 0>" not in page and "&lt;cat 0&gt;.png" in page
    links = _Links()
    links.feed(page)
    assert links.sources == ["pictures/my%20cat%230.png", "pictures/my%20cat%231.png"]
    assert "superpixel ids in the anchor</td><td>#12, #3" in page
    (bar,) = {style for style in links.styles if "linear-gradient" in style}
    # The bar shows the overlay as it is: transparent at 0, at the overlay's opacity (0.65) at 1.
    for fraction, alpha, stop in ((0.0, 0.0, "0%"), (1.0, 0.65, "100%")):
        r, g, b, _ = matplotlib.colormaps["viridis"](fraction)
        assert f"rgba({r * 255:.0f},{g * 255:.0f},{b * 255:.0f},{alpha:.2f}) {stop}" in bar
    assert "OSError: image file is truncated" in page


def test_a_coverage_that_any_anchor_of_its_size_gets_is_said_to_be_trivial(tmp_path):
    out, table = _table_with_rows(tmp_path, 2)  # anchor [12, 3], coverage 0.31: not (1 - 0.5) ** 2
    page = report.write_report(out, table, {"p_sample": 0.5}).read_text()
    assert "How to read this report" in page and "whatever the image" not in page.split("</details>")[1]
    from imgexplain.report import _coverage_note

    row = {"anchor": [4], "coverage": 0.49}
    assert _coverage_note(row, 0.5) == ("coverage 0.49 is (1 - p_sample)^1 = 0.50: what any anchor of 1 superpixel "
                                        "gets, whatever the image")
    assert _coverage_note({"anchor": [4, 5], "coverage": 0.25}, 0.5).startswith("coverage 0.25 is (1 - p_sample)^2")
    assert _coverage_note(row, 0.3) is None and _coverage_note({"anchor": [], "coverage": 1.0}, 0.5) is None


def test_summary_json_holds_numbers(tmp_path):
    out, table = _table_with_rows(tmp_path, 3)
    report.write_report(out, table, {"seed": 0})
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["images"], summary["ok"], summary["errors"]) == (3, 2, 1)
    assert summary["error_types"] == {"OSError": 1}
    assert summary["precision"] == {"median": 0.97} and summary["coverage"] == {"median": 0.31}
    assert summary["seconds"]["anchor"]["total"] == 0.5
    assert sorted(summary["seconds"]) == ["anchor", "gradcam", "image"]  # no seconds.seconds
    assert summary["classes"] == {"285 Egyptian_cat": 2}


def test_many_images_go_to_linked_pages(tmp_path):
    out, table = _table_with_rows(tmp_path, 5)
    page = report.write_report(out, table, {}, page_size=2).read_text()
    assert "<img" not in page
    assert [p.name for p in sorted((out / "report").iterdir())] == ["page-0001.html", "page-0002.html",
                                                                     "page-0003.html"]
    assert 'href="report/page-0002.html"' in page
    second = (out / "report" / "page-0002.html").read_text()
    assert 'src="../pictures/my%20cat%232.png"' in second
    assert "broken.jpg" in (out / "report" / "page-0003.html").read_text()
    report.write_report(out, table, {}, page_size=3)
    assert [p.name for p in sorted((out / "report").iterdir())] == ["page-0001.html", "page-0002.html"]


def _row(k):
    return {"image": f"image {k:04d}.png", "content_hash": str(k), "index": k, "status": "ok", "seconds": 1.0,
            "target": k % 7, "label": f"class {k % 7}", "predicted": k % 7,
            "top5": [{"index": k % 7, "label": f"class {k % 7}", "p": 0.5}] * 5, "gradcam": [[0.5] * 8] * 8,
            "layer": "features", "seconds_gradcam": 0.25,
            "pictures": [{"path": f"pictures/{k}.png", "title": "gradcam", "caption": "8x8 map", "colormap": None}]}


def _large_table(folder, n, parts=1):
    from imgexplain import pipeline, schema
    from imgexplain.results import OutputFolder

    folder = OutputFolder(folder, ["report.html", "report", "summary.json"], {})
    folder.claim()
    table = pipeline.results_table(folder, schema.row_schema(["gradcam"]))
    order = np.random.default_rng(0).permutation(n)  # rows in the table in another order than the images'
    for chunk in np.array_split(order, parts):
        table.append([_row(int(k)) for k in chunk])
    return folder.path, table


def test_the_report_reads_the_table_in_batches_and_pages_it_in_image_order(tmp_path):
    out, table = _large_table(tmp_path / "out", 90, parts=9)
    read = []
    batches = table.batches
    table.batches = lambda *args: (read.append(batch.num_rows) or batch for batch in batches(*args))
    report.write_report(out, table, {}, page_size=20, batch_size=7)
    assert read and max(read) <= 7
    assert "gradcam" not in {name for name in table.schema.names if name in schema.REPORT_COLUMNS}  # maps stay unread
    for number in range(1, 6):
        page = (out / "report" / f"page-{number:04d}.html").read_text()
        shown = [int(name) for name in re.findall(r"<h2>image (\d+)\.png</h2>", page)]
        assert shown == list(range(20 * (number - 1), min(20 * number, 90)))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == 90 and summary["classes"]["0 class 0"] == 13


def _report_peak_python_memory(folder, n):
    import tracemalloc

    out, table = _large_table(folder, n)
    tracemalloc.start()
    report.write_report(out, table, {}, batch_size=50)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def test_the_report_s_memory_does_not_grow_with_the_rows(tmp_path):
    # Ten times the rows: a report holding every row would need about 5 MB more (2.5 KB a row as Python
    # objects); what does grow is a sort key per image (under 200 bytes).
    small = _report_peak_python_memory(tmp_path / "small", 200)
    large = _report_peak_python_memory(tmp_path / "large", 2000)
    assert large - small < 2_000_000, (small, large)


def test_output_folder_of_someone_else_is_refused(tmp_path):
    from imgexplain.results import OutputFolder

    (tmp_path / "report.html").write_text("mine")
    with pytest.raises(ValueError, match="report.html' was not written by imgexplain"):
        OutputFolder(tmp_path, ["report.html"], {})
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="expected a folder, got the file"):
        OutputFolder(tmp_path / "notes.txt", [], {})
    with pytest.raises(ValueError, match="is a file, not a folder"):
        OutputFolder(tmp_path / "notes.txt" / "out", [], {})
    OutputFolder(tmp_path / "new" / "deeper", ["report.html"], {})
    assert not (tmp_path / "new").exists()
