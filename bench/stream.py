"""A folder at the model's speed: `imgexplain explain FOLDER` against the floor, measured in one run.

    PYTHONPATH=. nice -n 10 /work/main/.venv/bin/python -m bench.stream [--images 1000] [--anchor-images 10]
        [--memory-images 1000,10000] [--phases pictures,gradcam,anchors,memory,loss]

- gradcam: ms per image of `imgexplain explain FOLDER --method gradcam --workers 0 --pictures auto|png|none`
  (each; start-up excluded: the difference of a run of N images and one of N/10, over 0.9 N images) against
  the floor measured in the same run before each command and after the last (decode + resize +
  EfficientNet-Lite0 forward and backward to its feature layer + the weighted sum, at the better of batch
  sizes 1 and 16, on the first of the same files): each command against the mean of the floors around it,
  in wall-clock time and in CPU time (user + system, all threads; less moved by other work on the machine).
- pictures: CPU ms per image of drawing and encoding a Grad-CAM row's pictures, per --pictures kind, in one
  thread (the least of 5 passes over the floor's images: little moved by other work on the machine).
- anchors: the command with `--method anchor` on the first images, against `AnchorImage.explain` through
  the API on the same images (same settings, same model), start-up excluded the same way; 1 and 2 workers.
- memory: peak memory of the session for 64x64 images with a tiny exported model (.pt2), Grad-CAM.
- loss: SIGKILL of a Grad-CAM run part-way; the images whose pictures were written but whose row was not
  (explained, then lost) against the bound (rows per part + images in flight).

Writes bench/out/stream.json and prints Markdown for BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.dataset import make_images, run_command, table_rows

SEGMENTS = {"n_segments": 15, "compactness": 20, "sigma": 0.5, "start_label": 0}


def gradcam_floor(files, batch_sizes=(1, 16)) -> dict:
    """ms per image of decode + resize + forward + backward + weighted sum, per batch size."""
    import torch

    from imgexplain import zoo
    from imgexplain.datasets import load_image, resize_image

    model = zoo.efficientnet_lite0(framework="torch")
    layer = dict(model.model.named_modules())[model.feature_layer]
    seen = []
    handle = layer.register_forward_hook(lambda module, args, value: seen.append(value))
    timings, cpu = {}, {}
    try:
        for size in batch_sizes:
            tick, cpu_tick = time.perf_counter(), time.process_time()
            for start in range(0, len(files), size):
                pixels = np.stack([resize_image(load_image(path, target_size=None), model.input_size)
                                   for path in files[start:start + size]]).astype(np.float32)
                seen.clear()
                outputs = model.model(model.preprocess(pixels))
                activations = seen[0]
                gradients, = torch.autograd.grad(outputs.max(dim=1).values.sum(), activations)
                (gradients.mean(dim=(2, 3), keepdim=True) * activations).sum(dim=1).relu().detach().numpy()
            timings[size] = 1000 * (time.perf_counter() - tick) / len(files)
            cpu[size] = 1000 * (time.process_time() - cpu_tick) / len(files)
    finally:
        handle.remove()
    return {"ms": timings, "cpu_ms": cpu}


def children_cpu_seconds() -> float:
    """CPU seconds (user + system) of the child processes waited for so far, their own children included."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def command_ms(folder_files, work: Path, name: str, arguments) -> dict:
    """ms per image of the command, start-up excluded: runs on N/10 and on N images."""
    n = len(folder_files)
    small = max(1, n // 10)
    runs = {}
    for label, files in (("small", folder_files[:small]), ("large", folder_files)):
        out = work / f"{name}-{label}"
        cpu = children_cpu_seconds()
        runs[label] = run_command(["explain", *map(str, files), *arguments, "--out", str(out)])
        runs[label]["cpu_seconds"] = children_cpu_seconds() - cpu
        assert table_rows(out) == len(files), (table_rows(out), len(files))
    per_image = 1000 * (runs["large"]["seconds"] - runs["small"]["seconds"]) / (n - small)
    cpu_per_image = 1000 * (runs["large"]["cpu_seconds"] - runs["small"]["cpu_seconds"]) / (n - small)
    return {"ms_per_image": per_image, "cpu_ms_per_image": cpu_per_image, "seconds_small": runs["small"]["seconds"],
            "seconds_large": runs["large"]["seconds"], "n_small": small, "n": n,
            "peak_bytes": runs["large"]["peak_bytes"]}


PICTURES = ("auto", "png", "none")  # --pictures of the commands measured; auto is the default


def gradcam_phase(files, work, floor_images: int) -> dict:
    """The floor, then each command followed by the floor again: each command's ratio is against the mean of
    the floors just before and just after it (the machine's load moves them); the overall floor is their median."""
    first = gradcam_floor(files[:floor_images])
    best = min(first["ms"], key=first["ms"].get)
    floors, runs = [{key: first[key][best] for key in first}], {}
    for kind in PICTURES:
        runs[kind] = command_ms(files, work, f"gradcam-{kind}", ["--method", "gradcam", "--workers", "0",
                                                                 "--pictures", kind])
        again = gradcam_floor(files[:floor_images], batch_sizes=(best,))
        floors.append({key: again[key][best] for key in again})
        around = floors[-2:]
        runs[kind]["ratio"] = runs[kind]["ms_per_image"] / np.mean([floor["ms"] for floor in around])
        runs[kind]["cpu_ratio"] = runs[kind]["cpu_ms_per_image"] / np.mean([floor["cpu_ms"] for floor in around])
    result = {"floor_first": first, "best_batch": best, "floors": floors, **runs,
              "floor_ms": float(np.median([floor["ms"] for floor in floors])),
              "floor_cpu_ms": float(np.median([floor["cpu_ms"] for floor in floors]))}
    print(f"gradcam: floor {result['floor_ms']:.1f} ms an image ({result['floor_cpu_ms']:.1f} ms of CPU); " + ", ".join(
        f"--pictures {kind} {run['ms_per_image']:.1f} ms = {run['ratio']:.2f}x the floors around it "
        f"(CPU {run['cpu_ratio']:.2f}x)" for kind, run in runs.items()), file=sys.stderr)
    return result


def pictures_phase(files, repeats: int = 5) -> dict:
    """CPU ms per image of drawing and encoding a Grad-CAM row's pictures (the input and the overlay), per
    --pictures kind, in one thread: the least of ``repeats`` passes over ``files`` (timeit's way: the pass
    least disturbed by other work on the machine)."""
    from imgexplain.explainers import ImageExplainer
    from imgexplain.models import load_builtin

    classifier = load_builtin("torch")
    result = {}
    for kind in ("auto", "png", "jpeg"):
        explainer = ImageExplainer(lambda: classifier, ["gradcam"], pictures=kind)
        rows = explainer.explain_batch([explainer.load(path) for path in files])
        passes = []
        for _ in range(repeats):
            tick = time.process_time()
            for row in rows:
                for draw in row["files"].values():
                    draw()
            passes.append(1000 * (time.process_time() - tick) / len(files))
        result[kind] = {"cpu_ms": min(passes), "passes": passes,
                        "suffixes": sorted({path.rsplit(".", 1)[1] for row in rows for path in row["files"]})}
    print("pictures: " + ", ".join(f"{kind} {value['cpu_ms']:.1f} ms of CPU an image"
                                   for kind, value in result.items()), file=sys.stderr)
    return result


def anchors_api_seconds(files) -> list[float]:
    from imgexplain import AnchorImage, explainers
    from imgexplain.models import load_builtin

    classifier = load_builtin("torch")
    explainer = AnchorImage(classifier.predictor, classifier.input_size + (3,), segmentation_fn="slic",
                            segmentation_kwargs=dict(SEGMENTS), seed=0)
    seconds = []
    for path in files:
        image = ImageLoader(classifier.input_size)(path)
        tick = time.perf_counter()
        explainer.explain(image, threshold=0.95, p_sample=explainers.P_SAMPLE, tau=explainers.TAU)
        seconds.append(time.perf_counter() - tick)
    return seconds


class ImageLoader:
    def __init__(self, size):
        self.size = size

    def __call__(self, path):
        from imgexplain.datasets import load_image, resize_image

        return resize_image(load_image(path, target_size=None), self.size).astype(np.float32)


def anchors_phase(files, work) -> dict:
    api = anchors_api_seconds(files)
    one = command_ms(files, work, "anchor-w0", ["--method", "anchor", "--workers", "0"])
    two = command_ms(files, work, "anchor-w2", ["--method", "anchor", "--workers", "2"])
    api_ms = 1000 * float(np.mean(api[max(1, len(files) // 10):]))  # the images of the command's difference
    return {"api_seconds": api, "api_ms": api_ms, "w0": one, "w2": two,
            "ratio_w0": one["ms_per_image"] / api_ms, "ratio_w2": two["ms_per_image"] / api_ms}


def tiny_model(path: Path) -> None:
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 10)).eval()
    torch.export.save(torch.export.export(model, (torch.zeros(1, 3, 64, 64),)), str(path))


def memory_phase(work, counts) -> dict:
    from PIL import Image

    model = work / "tiny.pt2"
    tiny_model(model)
    rng = np.random.default_rng(0)
    folder = work / "small"
    folder.mkdir()
    runs = []
    made = 0
    for count in counts:
        for k in range(made, count):
            (folder / f"{k // 1000:02d}").mkdir(exist_ok=True)
            pixels = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{k // 1000:02d}/{k:05d}.png")
        made = count
        out = work / f"small-{count}"
        result = run_command(["explain", str(folder), "--model", str(model), "--method", "gradcam",
                              "--workers", "0", "--out", str(out)])
        assert table_rows(out) == count
        runs.append({"images": count, "seconds": result["seconds"], "peak_bytes": result["peak_bytes"]})
        print(f"memory: {count} images, {result['seconds']:.1f} s, peak {result['peak_bytes'] / 2**20:.0f} MiB",
              file=sys.stderr)
    return {"runs": runs}


def loss_phase(files, work, kill_after_seconds: float) -> dict:
    out = work / "loss"
    command = [sys.executable, "-c", "import sys; from imgexplain import cli; sys.exit(cli.main(%r))"
               % ["explain", *map(str, files), "--method", "gradcam", "--workers", "0", "--out", str(out)]]
    process = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pictures = out / "pictures"
    started = time.monotonic()
    while process.poll() is None and len(list(pictures.glob("*-gradcam.*"))) < 1:
        time.sleep(0.1)
    time.sleep(kill_after_seconds)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    explained = len(list(pictures.glob("*-gradcam.*")))
    rows = table_rows(out)
    return {"seconds_to_kill": time.monotonic() - started, "rows": rows, "pictures": explained,
            "lost_after_explained": explained - rows}


def markdown(results: dict) -> str:
    lines = []
    if "gradcam" in results:
        g = results["gradcam"]
        first = ", ".join(f"batch {size}: {ms:.1f}" for size, ms in g["floor_first"]["ms"].items())
        floors = ", ".join(f"{floor['ms']:.1f}" for floor in g["floors"])
        lines += [f"Grad-CAM floor, ms per image: first {first}; at batch {g['best_batch']} before each command and "
                  f"after the last: {floors}; median **{g['floor_ms']:.1f} ms** ({g['floor_cpu_ms']:.1f} ms of CPU).",
                  "", "| command | ms per image (start-up excluded) | x floor (mean of the floors around it) | "
                  "CPU ms per image | x floor's CPU | seconds N/10 | seconds N | peak MiB |",
                  "|---|---|---|---|---|---|---|---|"]
        for key in PICTURES:
            run, label = g[key], f"--pictures {key}{' (default)' if key == 'auto' else ''}"
            lines.append(f"| gradcam --workers 0 {label} | {run['ms_per_image']:.1f} | {run['ratio']:.2f} | "
                         f"{run['cpu_ms_per_image']:.1f} | {run['cpu_ratio']:.2f} | {run['seconds_small']:.1f} | "
                         f"{run['seconds_large']:.1f} | {run['peak_bytes'] / 2**20:.0f} |")
    if "pictures" in results:
        lines += ["", "Pictures of a Grad-CAM row (input + overlay), drawn and encoded in one thread, CPU ms per "
                  "image (least of 5 passes): " + ", ".join(f"--pictures {kind} ({'/'.join(value['suffixes'])}) "
                                                           f"**{value['cpu_ms']:.1f}**"
                                                           for kind, value in results["pictures"].items()) + "."]
    if "anchors" in results:
        a = results["anchors"]
        lines += ["", f"Anchors: the API's `AnchorImage.explain` **{a['api_ms']:.0f} ms** per image (mean over the "
                  f"images the command's difference covers; per image: "
                  f"{', '.join(f'{s:.1f}' for s in a['api_seconds'])} s).", "",
                  "| command | ms per image (start-up excluded) | x API |", "|---|---|---|",
                  f"| anchor --workers 0 | {a['w0']['ms_per_image']:.0f} | {a['ratio_w0']:.2f} |",
                  f"| anchor --workers 2 | {a['w2']['ms_per_image']:.0f} | {a['ratio_w2']:.2f} |"]
    if "memory" in results:
        lines += ["", "| 64x64 images, tiny .pt2, gradcam | seconds | peak MiB |", "|---|---|---|"]
        lines += [f"| {run['images']} | {run['seconds']:.1f} | {run['peak_bytes'] / 2**20:.0f} |"
                  for run in results["memory"]["runs"]]
    if "loss" in results:
        loss = results["loss"]
        lines += ["", f"SIGKILL {loss['seconds_to_kill']:.1f} s into a Grad-CAM run: {loss['rows']} rows in the "
                  f"table, {loss['pictures']} images with their pictures written: **{loss['lost_after_explained']} "
                  f"explained images lost** (bound: 64 rows per part, or 5 s, plus the images in flight)."]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--floor-images", type=int, default=200, help="images of the floor's measurement")
    parser.add_argument("--anchor-images", type=int, default=10)
    parser.add_argument("--memory-images", default="1000,10000")
    parser.add_argument("--phases", default="pictures,gradcam,anchors,memory,loss")
    parser.add_argument("--kill-after", type=float, default=8.0, help="seconds after the first picture (loss)")
    args = parser.parse_args(argv)
    phases = args.phases.split(",")
    results = {"started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load_before": os.getloadavg()}
    record = Path("bench/out/stream.json")
    record.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="imgexplain-bench-") as temporary:
        work = Path(temporary)
        folder = work / "images"
        folder.mkdir()
        make_images(folder, max(args.images, args.anchor_images))
        files = sorted(folder.rglob("*.jpg"))
        for phase in phases:
            if phase == "gradcam":
                results["gradcam"] = gradcam_phase(files[:args.images], work, args.floor_images)
            elif phase == "pictures":
                results["pictures"] = pictures_phase(files[:args.floor_images])
            elif phase == "anchors":
                results["anchors"] = anchors_phase(files[:args.anchor_images], work)
            elif phase == "memory":
                results["memory"] = memory_phase(work, [int(n) for n in args.memory_images.split(",")])
            elif phase == "loss":
                results["loss"] = loss_phase(files[:args.images], work, args.kill_after)
            results["load_after_" + phase] = os.getloadavg()
            record.write_text(json.dumps(results, indent=2, default=str))
            print(f"{phase}: done, load {os.getloadavg()}", file=sys.stderr)
    results["finished"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    record.write_text(json.dumps(results, indent=2, default=str))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
