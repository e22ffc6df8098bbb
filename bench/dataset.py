"""Throughput, memory and resume cost of `imgexplain explain` on a folder of images.

    /work/main/.venv/bin/python -m bench.dataset [--images 1000] [--anchor-images 6] [--memory-only]

Makes N images from scikit-image's sample photographs (flipped, cropped, rotated by a seeded
generator; JPEG files in a temporary folder), then runs the command line in a fresh process for each
setting, with the built-in EfficientNet-Lite0 (PyTorch). Each run's peak memory is the largest sum of
the resident memory of every process of its session (the command and its Ray processes), sampled every
0.1 s from /proc. Prints a Markdown table (for BENCHMARKS.md) and writes bench/out/dataset.json.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle", "immunohistochemistry")
PAGE = os.sysconf("SC_PAGE_SIZE")


def make_images(folder: Path, n: int, seed: int = 0) -> None:
    """n JPEG files: a sample photograph, flipped or not, cropped to 60-100 % and rotated by 0-360 degrees."""
    from PIL import Image

    from imgexplain import datasets

    photos = datasets.load_samples(target_size=None, names=PHOTOS)
    rng = np.random.default_rng(seed)
    for k in range(n):
        photo = photos[PHOTOS[rng.integers(len(PHOTOS))]]
        if rng.random() < 0.5:
            photo = photo[:, ::-1]
        height, width = photo.shape[:2]
        scale = rng.uniform(0.6, 1.0)
        h, w = int(height * scale), int(width * scale)
        top, left = rng.integers(0, height - h + 1), rng.integers(0, width - w + 1)
        image = Image.fromarray(np.ascontiguousarray(photo[top:top + h, left:left + w]))
        image = image.rotate(float(rng.uniform(0, 360)), resample=Image.BILINEAR).resize((320, 320))
        (folder / f"{k // 100:02d}").mkdir(exist_ok=True)
        image.save(folder / f"{k // 100:02d}" / f"{k:05d}.jpg", quality=90)


def _session_rss(session: int) -> int:
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == session:
                total += int(Path(f"/proc/{entry}/statm").read_text().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            continue
    return total


def table_rows(out: Path) -> int:
    """Rows in OUT/results.parquet (one-row parts while a run goes on, merged files after it)."""
    import pyarrow.parquet as pq

    parts = [path for path in (out / "results.parquet").glob("*.parquet") if not path.name.startswith((".", "_"))]
    return sum(pq.ParquetFile(path).metadata.num_rows for path in parts)


def run_command(arguments, kill_after_rows: int | None = None, out: Path | None = None) -> dict:
    """Run `imgexplain explain ARGUMENTS` in a new session; its seconds and peak memory (bytes)."""
    command = [sys.executable, "-c", f"import sys; from imgexplain import cli; sys.exit(cli.main({arguments!r}))"]
    started = time.perf_counter()
    process = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    try:
        while process.poll() is None:
            peak = max(peak, _session_rss(process.pid))
            if kill_after_rows is not None and len(list((out / "results.parquet").glob("part-*"))) >= kill_after_rows:
                os.killpg(process.pid, signal.SIGKILL)
                break
            time.sleep(0.1)
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        raise
    process.wait()
    seconds = time.perf_counter() - started
    if kill_after_rows is None and process.returncode != 0:
        raise RuntimeError(f"imgexplain failed: {process.stderr.read().decode()[-2000:]}")
    try:
        os.killpg(process.pid, signal.SIGKILL)  # whatever Ray left behind in the session
    except ProcessLookupError:
        pass
    return {"seconds": seconds, "peak_bytes": peak}


def measure(folder: Path, work: Path, name: str, method: str, workers: int, n: int, images) -> dict:
    out = work / name
    result = run_command(["explain", *map(str, images), "--method", method, "--workers", str(workers),
                          "--out", str(out)])
    rows = table_rows(out)
    assert rows == n, (rows, n)
    result.update(name=name, method=method, workers=workers, images=n, images_per_second=n / result["seconds"])
    print(f"{name}: {n} images in {result['seconds']:.1f} s, {result['images_per_second']:.2f} images/s, "
          f"peak {result['peak_bytes'] / 2**20:.0f} MiB", file=sys.stderr)
    return result


def resume_cost(work: Path, images, n: int, uninterrupted: float) -> dict:
    out = work / "resume"
    arguments = ["explain", *map(str, images), "--method", "gradcam", "--workers", "0", "--out", str(out)]
    first = run_command(arguments, kill_after_rows=n // 2, out=out)
    done = table_rows(out)
    second = run_command(arguments)
    total = first["seconds"] + second["seconds"]
    return {"killed_after_rows": done, "first_seconds": first["seconds"], "resumed_seconds": second["seconds"],
            "total_seconds": total, "uninterrupted_seconds": uninterrupted, "overhead": total / uninterrupted - 1}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000, help="images of the Grad-CAM runs (default: 1000)")
    parser.add_argument("--anchor-images", type=int, default=6,
                        help="images of the anchor runs, the first ones of the set (default: 6)")
    parser.add_argument("--anchors-only", action="store_true", help="only the anchor runs (recorded separately)")
    parser.add_argument("--memory-only", action="store_true",
                        help="only the two Grad-CAM runs in this process (N/4 and N images), for the peak memory")
    args = parser.parse_args(argv)
    n_large, n_anchor = args.images, args.anchor_images
    n_small = n_large // 4
    results = {"runs": []}
    name = "dataset-anchors" if args.anchors_only else "dataset-memory" if args.memory_only else "dataset"
    record = Path(f"bench/out/{name}.json")
    record.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="imgexplain-bench-") as temporary:
        work = Path(temporary)
        folder = work / "images"
        folder.mkdir()
        make_images(folder, n_large)
        files = sorted(folder.rglob("*.jpg"))
        settings = [("gradcam-w0-small", "gradcam", 0, n_small, files[:n_small]),
                    ("gradcam-w0", "gradcam", 0, n_large, [folder]),
                    ("gradcam-w2", "gradcam", 2, n_large, [folder]),
                    ("anchor-w0", "anchor,gradcam", 0, n_anchor, files[:n_anchor]),
                    ("anchor-w2", "anchor,gradcam", 2, n_anchor, files[:n_anchor])]
        chosen = settings[3:] if args.anchors_only else settings[:2] if args.memory_only else settings
        for index, setting in enumerate(chosen):
            results["runs"].append(measure(folder, work, *setting))
            record.write_text(json.dumps(results, indent=2))
            if index == 1 and not (args.anchors_only or args.memory_only):
                results["resume"] = resume_cost(work, [folder], n_large, results["runs"][1]["seconds"])
                print(f"resume: {results['resume']}", file=sys.stderr)
                record.write_text(json.dumps(results, indent=2))
    print(markdown(results, n_large))
    return 0


def markdown(results: dict, n_large: int) -> str:
    lines = ["| methods | --workers | images | seconds | images/s | peak memory (MiB) |", "|---|---|---|---|---|---|"]
    for row in results["runs"]:
        lines.append(f"| {row['method']} | {row['workers']} | {row['images']} | {row['seconds']:.1f} | "
                     f"{row['images_per_second']:.2f} | {row['peak_bytes'] / 2**20:.0f} |")
    if "resume" not in results:
        return "\n".join(lines)
    resume = results["resume"]
    lines.append(f"\nResume: killed after {resume['killed_after_rows']} of {n_large} rows at "
                 f"{resume['first_seconds']:.1f} s, resumed in {resume['resumed_seconds']:.1f} s; total "
                 f"{resume['total_seconds']:.1f} s vs {resume['uninterrupted_seconds']:.1f} s uninterrupted "
                 f"({100 * resume['overhead']:+.1f} %).")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
