"""Every benchmark of imgexplain against alibi, eli5 and pytorch-grad-cam, one after the other.

    python -m bench.run [--quick] [--output BENCHMARKS.md]     (also: python -m bench, make bench)

Runs bench.anchors (generated problems, and the photos unless --quick), bench.cam_speed,
bench.faithfulness (with this run's anchors of the photos) and bench.randomization. Each rewrites
only its own section of BENCHMARKS.md; a benchmark that fails leaves its section as it was, and the
command then exits with status 1. ``--quick`` writes its sections to its own file,
bench/out/BENCHMARKS-quick.md (unless --output says otherwise): a quick run's smaller figures never
replace the recorded ones. Raw figures: bench/out/results.json. See bench/README.md.
"""
import argparse
import json
import os
import sys
import time
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import anchor_problems  # noqa: E402 (tests/anchor_problems.py, see bench/__init__.py)

from bench import anchors, cam_speed, faithfulness, problems, randomization  # noqa: E402
from bench.benchmarks_md import BENCHMARKS_MD, write_section  # noqa: E402
from bench.common import context, load_average, log, photos, versions  # noqa: E402
from bench.peers import start_peer  # noqa: E402
from bench.problems import OUT  # noqa: E402

QUICK_PROBLEMS = 12
QUICK_OUTPUT = OUT / "BENCHMARKS-quick.md"


def run_anchors(quick, photo_images, command, output=BENCHMARKS_MD):
    """bench.anchors' comparison with alibi: its generated problems, then (not with ``quick``) the photos,
    seed 0. Writes its section of ``output``; returns the rows."""
    load_before = load_average()
    notes = []
    n_problems = QUICK_PROBLEMS if quick else anchors.N_PROBLEMS
    alibi = start_peer("alibi", notes)
    try:
        counts = {family: n_problems if family == "mixed" else n_problems // 4 if quick else anchors.FAMILY_PROBLEMS
                  for family in anchor_problems.FAMILIES}
        rows = [row for family, n in counts.items() for row in anchors.generated_rows(alibi, n, [0], family)]
        if not quick:
            rows += anchors.photo_rows(alibi, list(zip(problems.PHOTOS, photo_images)),
                                       problems.EfficientNetPredictor(), [0])[0]
        alibi_version = alibi.versions["version"] if alibi else None
    finally:
        if alibi is not None:
            alibi.close()
    lines = anchors.section_lines(rows, counts, [0], [] if quick else [0], command)
    lines += [f"- {note}" for note in notes]
    lines += ["", context(None, load_before, versions({"alibi": alibi_version}))]  # section_lines names the command
    write_section(anchors.SECTION.removeprefix("## "), "\n".join(lines), output)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run that still runs every peer once")
    parser.add_argument("--output", default=None,
                        help=f"the Markdown file whose sections are rewritten (default: {BENCHMARKS_MD.name}; with "
                             f"--quick, {QUICK_OUTPUT.relative_to(problems.ROOT)})")
    args = parser.parse_args(argv)
    if args.output is None:
        args.output = str(QUICK_OUTPUT if args.quick else BENCHMARKS_MD)
        OUT.mkdir(parents=True, exist_ok=True)
    command = f"{'make bench-quick' if args.quick else 'make bench'} (python -m bench.run{' --quick' * args.quick})"
    began = time.perf_counter()
    photo_images = photos()
    results, failed = {}, []

    def attempt(name, benchmark):
        try:
            results[name] = benchmark()
        except Exception:  # the other benchmarks still run; this one's section stays as it was
            traceback.print_exc()
            failed.append(name)

    attempt("anchors", lambda: run_anchors(args.quick, photo_images, command, args.output))
    attempt("cam_speed", lambda: cam_speed.run(args.quick, photo_images, command, args.output))
    attempt("faithfulness", lambda: faithfulness.run(args.quick, photo_images, results.get("anchors", []), command,
                                                     args.output))
    attempt("randomization", lambda: randomization.run(args.quick, photo_images, command, args.output))
    seconds = time.perf_counter() - began
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps({"command": command, "seconds": seconds, "failed": failed,
                                                  **results}, indent=1, default=str))
    log(f"{args.output}: rewrote the sections of {', '.join(results) or 'no benchmark'} in {seconds:.0f} s"
        + (f"; failed: {', '.join(failed)} (sections left as they were)" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
