"""The report's interactive table in a real headless Chromium: it loads from file://, sorts, filters,
searches, opens an image's pictures, and logs nothing to the console."""
import numpy as np
import pytest
from browser import chromium_paths, headless_chromium
from PIL import Image
from selenium.webdriver.support.ui import Select

from imgexplain import report
from imgexplain.report_table import ROWS_SHOWN, summaries_json, table_parts

pytestmark = pytest.mark.skipif(chromium_paths() is None,
                                reason="chromium and chromedriver are not installed (.ci/run installs them)")


def _row(k, status="ok"):
    row = {"image": f"/data/photo {k:03d}.png", "content_hash": str(k), "index": k, "status": status,
           "seconds": 1.0 + k % 5, "error_type": None, "error": None}
    if status == "ok":
        row.update(target=k % 3, label=["cat", "dog", "car"][k % 3], predicted=k % 3,
                   top5=[{"index": k % 3, "label": "cat", "p": 0.9}], anchor=[k % 4], precision=0.90 + k % 10 / 100,
                   coverage=0.5, num_preds=100, anchor_found=True, seconds_anchor=0.5 + k % 5, gradcam=[[0.5]],
                   layer="features", seconds_gradcam=0.25,
                   pictures=[{"path": f"pictures/photo-{k:03d}-{kind}.png", "title": kind, "caption": "c",
                              "colormap": None} for kind in ("input", "anchor", "gradcam")])
        if k == 19:  # a tampered table: pictures outside OUT are never shown
            row["pictures"] += [{"path": path, "title": "bad", "caption": "", "colormap": None}
                                for path in ("javascript:alert(1)", "../outside.png", "/etc/passwd")]
    else:
        row.update(error_type="OSError", error="image file is truncated <b>bold</b>")
    return row


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """A report of 30 images (3 errors) with its pictures, written by write_report."""
    from imgexplain import pipeline, schema
    from imgexplain.results import OutputFolder

    folder = OutputFolder(tmp_path_factory.mktemp("run") / "out", ["report.html", "report", "summary.json",
                                                                   "pictures"], {})
    folder.claim()
    table = pipeline.results_table(folder, schema.row_schema(["anchor", "gradcam"]))
    rows = [_row(k, "error" if k % 10 == 7 else "ok") for k in range(30)]
    table.append(rows)
    (folder.path / "pictures").mkdir()
    for row in rows:
        for picture in row.get("pictures", [])[:3]:
            Image.fromarray(np.full((8, 8, 3), 40 * (row["index"] % 6), np.uint8)).save(folder.path / picture["path"])
    return report.write_report(folder.path, table, {"method": "anchor,gradcam"}, page_size=10)


@pytest.fixture(scope="module")
def driver():
    """One headless Chromium for the module (a fresh profile)."""
    with headless_chromium() as browser:
        yield browser


def _names(driver):
    return [row.find_element("css selector", "td").text for row in driver.find_elements("css selector", "tr.row")]


def _type(driver, field, text):
    element = driver.find_element("id", field)
    element.clear()
    element.send_keys(text)


def test_the_page_sorts_filters_searches_and_opens_pictures_without_console_errors(page, driver):
    driver.get(page.as_uri())
    assert _names(driver) == [f"photo {k:03d}.png" for k in range(30)]  # in the images' order
    assert driver.find_element("id", "shown").text == "30 matching images (of 30)"

    headers = {th.text: th for th in driver.find_elements("css selector", "#images th")}
    headers["precision"].click()  # lowest first; the errors (no precision) last
    names = _names(driver)
    assert names[:3] == ["photo 000.png", "photo 010.png", "photo 020.png"]
    assert names[-3:] == ["photo 007.png", "photo 017.png", "photo 027.png"]
    headers["precision"].click()  # the other way
    assert _names(driver)[:3] == ["photo 009.png", "photo 019.png", "photo 029.png"]

    status = Select(driver.find_element("id", "status"))
    status.select_by_visible_text("error")
    assert _names(driver) == ["photo 007.png", "photo 017.png", "photo 027.png"]
    assert "truncated <b>bold</b>" in driver.find_element("css selector", "tr.row td.error + td").text
    status.select_by_visible_text("any")

    _type(driver, "class", "1 dog")
    assert sorted(_names(driver)) == [f"photo {k:03d}.png" for k in range(1, 30, 3) if k % 10 != 7]
    _type(driver, "seconds", "5")
    assert sorted(_names(driver)) == ["photo 004.png", "photo 019.png"]
    driver.find_element("id", "class").clear()
    _type(driver, "seconds", "")
    _type(driver, "coverage", "0.6")
    assert _names(driver) == []
    driver.find_element("id", "coverage").clear()
    _type(driver, "search", "01")
    assert sorted(_names(driver)) == ["photo 001.png"] + [f"photo {k:03d}.png" for k in range(10, 20)]

    driver.find_element("css selector", "tr.row").click()  # the methods' pictures, side by side
    sources = [img.get_attribute("src") for img in driver.find_elements("css selector", "tr.open img")]
    assert [source.rsplit("/", 1)[1] for source in sources] == [
        f"photo-019-{kind}.png" for kind in ("input", "anchor", "gradcam")]
    assert all(driver.execute_script("return arguments[0].naturalWidth", img) == 8
               for img in driver.find_elements("css selector", "tr.open img"))  # loaded from file://
    assert [entry for entry in driver.get_log("browser") if entry["level"] != "INFO"] == []


def test_a_large_table_shows_its_first_rows_and_says_how_many_match(tmp_path, driver):
    page = tmp_path / "table.html"
    rows = [_row(k) for k in range(ROWS_SHOWN + 50)]
    page.write_text("<!DOCTYPE html><html><body>" + "".join(table_parts([summaries_json(rows)])) + "</body></html>")
    driver.get(page.as_uri())
    assert len(_names(driver)) == ROWS_SHOWN
    assert driver.find_element("id", "shown").text.startswith(f"showing the first {ROWS_SHOWN} of "
                                                              f"{ROWS_SHOWN + 50} matching images")
    assert [entry for entry in driver.get_log("browser") if entry["level"] != "INFO"] == []
