"""How fast the report's interactive table opens and filters 10,000 images in headless Chromium.

    python -m bench.report_page --rows 10000 --seeds 5

For each seed, a table of ``--rows`` generated rows (names, classes, statuses, precisions, coverages,
times and three pictures each, drawn from the seed) becomes the page that ``imgexplain.report`` writes
(the table's controls, script and embedded JSON), opened from ``file://`` in Debian's chromium through
Selenium. Measured inside the page with ``performance.now()``: the time from navigation start to the end of
the load event (the JSON parsed and the first rows drawn), and, for each of a family of filters and sorts
(a file-name search, a class, a status, precision and coverage thresholds, a sort by time), the time from
changing the control to the table redrawn and laid out. Writes the section "Report page in a browser" of
BENCHMARKS.md with the median, the worst decile and the worst case.
"""
import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.benchmarks_md import write_section
from bench.common import command_line, load_average, machine

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from browser import headless_chromium  # noqa: E402  (the tests' headless Chromium)

ACTIONS = (
    ("search a file name", "search", "input", "12"),
    ("filter a class", "class", "input", "3 class 3"),
    ("filter the status", "status", "change", "error"),
    ("precision >= 0.97", "precision", "input", "0.97"),
    ("coverage >= 0.3", "coverage", "input", "0.3"),
    ("time >= 9 s", "seconds", "input", "9"),
)


def rows(n, seed):
    """``n`` results rows as the table holds them, drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    made = []
    for k in range(n):
        status = "error" if rng.random() < 0.03 else "ok"
        row = {"image": f"/data/set {seed}/image_{k:05d}_{rng.integers(10**6):06d}.jpg", "status": status,
               "seconds": float(rng.gamma(2.0, 2.0)), "error_type": "OSError", "error": "image file is truncated"}
        if status == "ok":
            label = int(rng.integers(50))
            size = int(rng.integers(1, 4))
            row.update(target=label, label=f"class {label}", precision=float(rng.uniform(0.85, 1.0)),
                       coverage=0.5 ** size, anchor=sorted(rng.choice(15, size, replace=False).tolist()),
                       seconds_anchor=float(rng.gamma(2.0, 1.5)), seconds_gradcam=float(rng.gamma(2.0, 0.1)),
                       pictures=[{"path": f"pictures/image_{k:05d}-{kind}.png", "title": kind, "caption": "",
                                  "colormap": None} for kind in ("input", "anchor", "gradcam")])
        made.append(row)
    return made


def page(path, table_rows):
    from imgexplain.report import TABLE_STYLE
    from imgexplain.report_table import summaries_json, table_parts

    path.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'><style>{TABLE_STYLE}</style></head><body>"
                    + "".join(table_parts([summaries_json(table_rows)])) + "</body></html>")
    return path.stat().st_size


_CHANGE = """
const [id, kind, value] = arguments;
const control = document.getElementById(id);
const start = performance.now();
control.value = value;
control.dispatchEvent(new Event(kind));
document.body.offsetHeight;  // the redrawn table laid out
const seconds = (performance.now() - start) / 1000;
control.value = "";
control.dispatchEvent(new Event(kind));
return seconds;
"""

_SORT = """
const header = document.querySelector('#images th[data-key="seconds"]');
const start = performance.now();
header.click();
document.body.offsetHeight;
return (performance.now() - start) / 1000;
"""


def measure(driver, path):
    """Seconds to open the page and to apply each action (a dict)."""
    driver.get(path.as_uri())
    opened = driver.execute_script(
        "const t = performance.getEntriesByType('navigation')[0]; return t.loadEventEnd / 1000;")
    times = {"open": opened}
    for name, control, kind, value in ACTIONS:
        times[name] = driver.execute_script(_CHANGE, control, kind, value)
    times["sort by time"] = driver.execute_script(_SORT)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10000)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args(argv)
    load_before = load_average()
    results = []
    with tempfile.TemporaryDirectory() as folder, headless_chromium() as driver:
        for seed in range(args.seeds):
            path = Path(folder) / f"report-{seed}.html"
            size = page(path, rows(args.rows, seed))
            times = measure(driver, path)
            results.append(times)
            print(f"seed {seed}: page {size / 2**20:.1f} MiB, " +
                  ", ".join(f"{name} {seconds:.3f} s" for name, seconds in times.items()), flush=True)
    names = list(results[0])
    lines = [
        f"Command: `{command_line('bench.report_page', argv)}`, {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} "
        f"UTC; machine: {machine()}; load average before / after: {load_before} / {load_average()}; "
        "Debian's chromium, headless, through Selenium. Each of "
        f"{args.seeds} seeded tables of {args.rows:,} rows (3 % errors, 50 classes, three pictures a row) is "
        f"the report's interactive table (about {size / 2**20:.1f} MiB of HTML with its embedded JSON), opened "
        "from file://; times measured in the page with performance.now(): opening (navigation start to the end "
        "of the load event: the JSON parsed and the first rows drawn) and each filter or sort (the control "
        "changed to the redrawn table laid out).",
        "",
        "| action | median | worst decile | worst |",
        "|---|---|---|---|",
    ]
    for name in names:
        values = sorted(result[name] for result in results)
        decile = values[min(len(values) - 1, int(np.ceil(0.9 * len(values))) - 1)]
        lines.append(f"| {name} | {statistics.median(values):.3f} s | {decile:.3f} s | {max(values):.3f} s |")
    worst = max(max(result.values()) for result in results)
    lines += ["", f"Every action, on every table, took under a second: the worst was {worst:.3f} s." if worst < 1
              else f"The worst action took {worst:.3f} s: more than a second."]
    write_section("Report page in a browser", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
