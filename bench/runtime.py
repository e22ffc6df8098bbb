"""Model runtimes: EfficientNet-Lite0 on PyTorch and on ONNX Runtime, and what the runtime does to anchors and Score-CAM.

    python -m bench.runtime [--repeats 3] [--photos 5] [--parts runtimes,anchors,scorecam]

Three measurements, all in this one run, printed as markdown and written to bench/out/runtime-PARTS.md (and the raw
figures to bench/out/runtime-PARTS.json); the tables go into BENCHMARKS.md, section "Model runtime":

1. ms per image of each runtime over the same 64 images (0..255 pixels in, softmax probabilities out, every
   runtime doing the same preprocessing), after warm-up passes, repetitions interleaved, best and median.
2. Anchors per photo, imgexplain (the built-in predictor, ONNX Runtime) against alibi 0.9.6 (its worker from
   bench/peers.py, the same weights on PyTorch, as an alibi user runs them), seed 000's arguments, the same superpixels.
3. Score-CAM of one photo: the masked forward passes on PyTorch and on ONNX Runtime (and CAM(forward=...) where
   this tree's CAM takes it).
"""
import argparse
import inspect
import json
import os
import time

import numpy as np

from bench import anchors as anchor_bench
from bench import problems
from bench.common import command_line, log, machine, photos, save
from bench.peers import Peer

N_IMAGES = 64
TORCH_BATCHES = (4, 8, 32)
ONNX_BATCHES = (1, 8, 32)
SCORECAM_MASKS = 1280  # EfficientNet-Lite0's last feature map has 1280 channels: one masked image each


def load():
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def images_64():
    """64 photographs at 224x224: scikit-image's samples and their mirror images, as float32 0..255."""
    from imgexplain.datasets import load_samples

    samples = np.stack(list(load_samples().values())).astype(np.float32)
    return np.concatenate([samples, samples[:, :, ::-1], samples[:, ::-1]] * 2)[:N_IMAGES]


def softmax(logits):
    exponentials = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exponentials / exponentials.sum(axis=1, keepdims=True)


def network_input(images):
    return np.ascontiguousarray(((images - 127.0) / 128.0).transpose(0, 3, 1, 2), dtype=np.float32)


def torch_runtime(model, batch, channels_last):
    """PyTorch in chunks of ``batch``: NCHW (the zoo's predictor before ONNX Runtime) or channels_last."""
    import torch

    layout = torch.channels_last if channels_last else torch.contiguous_format

    def predict(images):
        x = torch.from_numpy(network_input(images)).contiguous(memory_format=layout)
        with torch.inference_mode():
            return softmax(torch.cat([model(part) for part in x.split(batch)]).numpy())

    return predict


def onnx_runtime(session, batch):
    def predict(images):
        x = network_input(images)
        return softmax(np.concatenate([session.run(None, {"input": x[start:start + batch]})[0]
                                       for start in range(0, len(x), batch)]))

    return predict


def runtimes():
    """{name: images -> probabilities}, and the built-in model."""
    import copy

    import torch

    from imgexplain import zoo
    from imgexplain.predictor import from_torch

    builtin = zoo.efficientnet_lite0(framework="torch", device="cpu")
    nchw = builtin.model
    channels_last = copy.deepcopy(nchw).to(memory_format=torch.channels_last)
    fast_torch = from_torch(nchw, preprocess=network_input, device="cpu")
    candidates = {"zoo predictor before: PyTorch NCHW, chunks of 32": torch_runtime(nchw, 32, False)}
    for batch in TORCH_BATCHES:
        candidates[f"PyTorch channels_last, batch {batch}"] = torch_runtime(channels_last, batch, True)
    candidates["from_torch (channels_last, chunk size timed)"] = lambda images: softmax(fast_torch(images))
    for batch in ONNX_BATCHES:
        candidates[f"ONNX Runtime session, batch {batch}"] = onnx_runtime(builtin.runtime.session, batch)
    candidates["built-in predictor (ONNX Runtime, chunks of 32)"] = builtin.predictor
    return candidates, builtin, fast_torch


def bench_runtimes(repeats):
    images = images_64()
    candidates, builtin, fast_torch = runtimes()
    reference = None
    for name, predict in candidates.items():  # warm-up (two passes choose the timed chunk sizes), same answers
        for _ in range(2):
            probs = predict(images)
        reference = probs if reference is None else reference
        assert np.abs(probs - reference).max() < 1e-4, name
    samples = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, predict in candidates.items():
            began = time.perf_counter()
            predict(images)
            samples[name].append(1000 * (time.perf_counter() - began) / len(images))
    rows = [{"runtime": name, "best_ms": min(times), "median_ms": float(np.median(times)), "samples": times}
            for name, times in samples.items()]
    chunk_sizes = {"built-in": builtin.runtime.batch_size, "from_torch": fast_torch.batch_size}
    return rows, chunk_sizes


def runtime_lines(rows, chunk_sizes, repeats, load_before, load_after):
    by_name = {row["runtime"]: row for row in rows}
    before = next(row for name, row in by_name.items() if name.startswith("zoo predictor before"))
    builtin = next(row for name, row in by_name.items() if name.startswith("built-in"))
    fastest = min(rows, key=lambda row: row["best_ms"])
    speedup = before["best_ms"] / builtin["best_ms"]
    to_fastest = builtin["best_ms"] / fastest["best_ms"]
    lines = [f"{N_IMAGES} images (scikit-image's samples and mirror images, 224x224), 0..255 pixels in, softmax "
             f"probabilities out (all runtimes agree within 1e-4); {repeats} interleaved passes after 2 warm-up "
             f"passes each; ms per image. Load average (1, 5, 15 min) before {load_before}, after {load_after}. "
             f"Chunk sizes: built-in {chunk_sizes['built-in']} (fixed), from_torch (timed) "
             f"{chunk_sizes['from_torch']}.", "",
             "| runtime | best ms / image | median ms / image |", "|---|---|---|"]
    lines += [f"| {row['runtime']} | {row['best_ms']:.1f} | {row['median_ms']:.1f} |" for row in rows]
    lines += ["", f"Built-in predictor vs the zoo's PyTorch NCHW path: **{speedup:.1f}x** faster per image "
              f"(target >= 8x: {'met' if speedup >= 8 else 'NOT met'}); vs the fastest runtime measured "
              f"({fastest['runtime']}): **{to_fastest:.2f}x** (target <= 1.3x: "
              f"{'met' if to_fastest <= 1.3 else 'NOT met'})."]
    return lines


def bench_anchors(n_photos, builtin):
    """Per photo: imgexplain's anchors on the built-in predictor, alibi's on PyTorch, same superpixels."""
    from skimage.segmentation import slic

    (problems.OUT / "inputs").mkdir(parents=True, exist_ok=True)
    builtin.predictor(images_64())  # ONNX Runtime's set-up runs, paid once per process
    alibi = Peer("alibi")
    rows = []
    try:
        for name, image in list(zip(problems.PHOTOS, photos()))[:n_photos]:
            segments = slic(image / 255.0, **problems.SLIC_KWARGS)
            problem = f"photo:{name}"
            image_path = save(f"{problem}-image", image)
            segments_path = save(f"{problem}-segments", segments)
            ours = anchor_bench.ours(builtin.predictor, image, segments, 0, dict(problems.ANCHOR_ARGS))
            theirs = alibi.ask("photo", image_path=image_path, segments_path=segments_path,
                               explain_kwargs=dict(problems.ANCHOR_ARGS), seed=0)
            rows.append({"photo": name, "imgexplain": ours, "alibi": theirs})
            log(f"anchors {name}: ours {ours['wall']:.1f} s, {ours['images']} images; "
                          f"alibi {theirs['wall']:.1f} s, {theirs['images']} images")
    finally:
        alibi.close()
    return rows


def anchor_lines(rows):
    def factors(ours, theirs):
        evaluations = theirs["images"] / ours["images"]
        runtime = (theirs["model_seconds"] / theirs["images"]) / (ours["model_seconds"] / ours["images"])
        return theirs["wall"] / ours["wall"], evaluations, runtime

    lines = ["Seed 000's arguments (threshold 0.95, p_sample 0.5, tau 0.25, batch_size 100), seed 0, the same "
             "slic superpixels on both sides (bench/common.py's photos). imgexplain: `AnchorImage` on "
             "`zoo.efficientnet_lite0().predictor` (ONNX Runtime, after one warm-up call on 64 other images, as in any long run); alibi 0.9.6: the same weights on PyTorch "
             "(bench/problems.py's `EfficientNetPredictor`, NCHW, the whole batch at once). Wall factor = "
             "evaluation factor (alibi's images / ours) x runtime factor (alibi's model seconds per image / ours) "
             "x what the rest of the search costs.", "",
             "| photo | anchor ours / alibi | wall s ours / alibi | wall factor | images ours / alibi | "
             "evaluation factor | ms per image ours / alibi | runtime factor |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        ours, theirs = row["imgexplain"], row["alibi"]
        wall, evaluations, runtime = factors(ours, theirs)
        lines.append(f"| {row['photo']} | {ours['feature']} / {theirs['feature']} | {ours['wall']:.2f} / "
                     f"{theirs['wall']:.2f} | {wall:.1f}x | {ours['images']} / {theirs['images']} | "
                     f"{evaluations:.2f}x | {1000 * ours['model_seconds'] / ours['images']:.1f} / "
                     f"{1000 * theirs['model_seconds'] / theirs['images']:.1f} | {runtime:.1f}x |")
    total = {side: {key: sum(row[side][key] for row in rows) for key in ("wall", "images", "model_seconds")}
             for side in ("imgexplain", "alibi")}
    wall, evaluations, runtime = factors(total["imgexplain"], total["alibi"])
    lines.append(f"| **all** | | {total['imgexplain']['wall']:.2f} / {total['alibi']['wall']:.2f} | **{wall:.1f}x** "
                 f"| {total['imgexplain']['images']} / {total['alibi']['images']} | **{evaluations:.2f}x** | | "
                 f"**{runtime:.1f}x** |")
    lines += ["", f"Target: at least 20x less wall time than alibi over the photos: "
              f"{'met' if wall >= 20 else 'NOT met'} ({wall:.1f}x)."]
    return lines


def bench_scorecam(builtin, chunk=128):
    """Seconds for the masked forward passes of one photo's Score-CAM: PyTorch (chunks of 32) and ONNX Runtime."""
    import torch

    from imgexplain import CAM

    x = builtin.preprocess(photos()[:1])
    features = []
    layer = dict(builtin.model.named_modules())[builtin.feature_layer]
    handle = layer.register_forward_hook(lambda module, args, output: features.append(output))
    with torch.inference_mode():
        builtin.model(x)
    handle.remove()
    activations = features[0][0, :SCORECAM_MASKS, None]  # (1280, 1, 7, 7)

    def torch_forward(batch):
        with torch.inference_mode():
            return torch.cat([builtin.model(part) for part in torch.from_numpy(batch).split(32)]).numpy()

    forwards = {"PyTorch NCHW, chunks of 32": torch_forward, "ONNX Runtime (PretrainedModel.forward)": builtin.forward}
    timings, outputs = dict.fromkeys(forwards, 0.0), {name: [] for name in forwards}
    for start in range(0, len(activations), chunk):  # masked images a chunk at a time, as Score-CAM makes them
        masks = torch.nn.functional.interpolate(activations[start:start + chunk], size=x.shape[2:], mode="bilinear")
        masks = masks / masks.amax(dim=(2, 3), keepdim=True).clamp_min(1e-12)
        masked = (x * masks).numpy()
        for name, forward in forwards.items():
            began = time.perf_counter()
            outputs[name].append(forward(masked))
            timings[name] += time.perf_counter() - began
    first, second = (np.concatenate(parts) for parts in outputs.values())
    agreement = float(np.abs(first - second).max())
    with_forward = "forward" in inspect.signature(CAM).parameters
    if with_forward:
        for name, kwargs in (("CAM scorecam, PyTorch", {}),
                             ("CAM scorecam, forward=ONNX Runtime", {"forward": builtin.forward})):
            cam = CAM(builtin.model, layer=builtin.feature_layer, method="scorecam", **kwargs)
            began = time.perf_counter()
            cam(x)
            timings[name] = time.perf_counter() - began
    return timings, agreement, with_forward


def scorecam_lines(timings, agreement, with_forward):
    lines = [f"One photo (chelsea), {SCORECAM_MASKS} masked images (one per channel of the last feature map, "
             f"upsampled and scaled to [0, 1]), logits out; the two runtimes agree within {agreement:.1e}. "
             "Seconds per image, one run each.", "", "| Score-CAM forward passes | seconds per image |", "|---|---|"]
    lines += [f"| {name} | {seconds:.1f} |" for name, seconds in timings.items()]
    if not with_forward:
        lines += ["", "This tree's `CAM` takes no `forward=` yet: the bare masked forward passes are measured."]
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="interleaved timed passes per runtime")
    parser.add_argument("--photos", type=int, default=len(problems.PHOTOS), help="photos for the anchors")
    parser.add_argument("--parts", default="runtimes,anchors,scorecam", help="which measurements to run")
    args = parser.parse_args(argv)
    parts = args.parts.split(",")
    sections, results = {}, {}
    if "runtimes" in parts:
        load_before = load()
        rows, chunk_sizes = bench_runtimes(args.repeats)
        sections["Model runtime"] = runtime_lines(rows, chunk_sizes, args.repeats, load_before, load())
        results.update(runtimes=rows, chunk_sizes=chunk_sizes)
        log("\n".join(sections["Model runtime"]))
    from imgexplain import zoo

    builtin = zoo.efficientnet_lite0(framework="torch", device="cpu")
    if "anchors" in parts:
        load_anchors = load()
        results["anchors"] = bench_anchors(args.photos, builtin)
        sections["Anchors per photo, imgexplain vs alibi"] = (
            [f"Load average before {load_anchors}, after {load()}."] + anchor_lines(results["anchors"]))
    if "scorecam" in parts:
        load_cam = load()
        timings, agreement, with_forward = bench_scorecam(builtin)
        results["scorecam"] = {"seconds": timings, "agreement": agreement}
        sections["Score-CAM"] = [f"Load average before {load_cam}, after {load()}."] + scorecam_lines(
            timings, agreement, with_forward)
    text = [f"Command: `{command_line('bench.runtime', argv)}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {machine()})."]
    for title, lines in sections.items():
        text += ["", f"### {title}", "", *lines]
    problems.OUT.mkdir(parents=True, exist_ok=True)
    name = "runtime-" + "-".join(parts)
    (problems.OUT / f"{name}.md").write_text("\n".join(text) + "\n")
    (problems.OUT / f"{name}.json").write_text(json.dumps(results, indent=1, default=str))
    print("\n".join(text))


if __name__ == "__main__":
    main()
