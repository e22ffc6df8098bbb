"""Grad-CAM speed: imgexplain against eli5 (Keras) and pytorch-grad-cam (PyTorch), and against the floor.

    python -m bench.cam_speed [--quick] [--output BENCHMARKS.md]

Seconds per image at batches of 1 and 8, the best call after one warm-up call, for imgexplain's CAM,
for the least work any Grad-CAM does (the floor: a forward pass and the gradient of the top class's
score with respect to the layer's activations) and for the peer on the same model and images; and how
far the peer's maps agree with ours. Writes the section "Grad-CAM speed" of BENCHMARKS.md.
"""
import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from bench import problems  # noqa: E402
from bench.benchmarks_md import BENCHMARKS_MD, write_section  # noqa: E402
from bench.common import command_line, context, load_average, log, photos, save, versions  # noqa: E402
from bench.peers import start_peer  # noqa: E402
from bench.problems import OUT  # noqa: E402

TITLE = "Grad-CAM speed"
# Images timed one at a time: all 8 in the full run, the first 4 in quick mode.
QUICK_BATCH1_IMAGES = 4


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


def eight_images(photo_images):
    """The five photos and the first three mirrored: a batch of 8."""
    return np.concatenate([photo_images, photo_images[:3, :, ::-1]])


def keras_models(photo_images, quick):
    """(name, model, layer, preprocessed 8 images, path of the saved model) for each Keras model."""
    import keras

    from imgexplain import zoo

    eight = eight_images(photo_images)
    keras.utils.set_random_seed(0)
    mobilenet = keras.applications.MobileNetV2(weights=None)
    models = [("MobileNetV2 (random weights)", mobilenet, "out_relu", eight / 127.5 - 1.0)]
    if not quick:
        lite = zoo.efficientnet_lite0(framework="keras")
        models.append(("EfficientNet-Lite0 (Keras port)", lite.model, lite.feature_layer, lite.preprocess(eight)))
    saved = []
    for name, model, layer, images in models:
        path = OUT / "models" / f"{name.split()[0]}.keras"
        path.parent.mkdir(parents=True, exist_ok=True)
        model.save(path)
        saved.append((name, model, layer, np.asarray(images, dtype=np.float32), str(path)))
    return saved


def time_ours_and_floor(row, cam, floor, images, quick, repeats):
    """Add ours_B and floor_B (seconds per image at batch B = 1 and 8) to ``row``; the batch-1 image count."""
    n_batch1 = QUICK_BATCH1_IMAGES if quick else len(images)
    for batch in (1, 8):
        timed = images[:n_batch1] if batch == 1 else images
        row[f"ours_{batch}"] = problems.seconds_per_image(cam, timed, batch, repeats)["best"]
        row[f"floor_{batch}"] = problems.seconds_per_image(floor, timed, batch, repeats)["best"]
    return n_batch1


def keras_rows(eli5, quick, photo_images):
    """imgexplain, the floor and eli5 (when not None) on each Keras model."""
    import imgexplain

    repeats = 1 if quick else 3
    rows = []
    for name, model, layer, images, path in keras_models(photo_images, quick):
        cam = imgexplain.CAM(model, layer=layer, method="gradcam")
        row = {"model": name, "framework": "Keras", "layer": layer, "peer": eli5.label if eli5 else None}
        n_batch1 = time_ours_and_floor(row, cam, keras_floor(model, layer), images, quick, repeats)
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


def torch_rows(gradcam, quick, photo_images):
    """imgexplain, the floor and pytorch-grad-cam (when not None) on EfficientNet-Lite0 + softmax."""
    from scipy.stats import spearmanr
    from skimage.transform import resize

    import imgexplain

    repeats = 1 if quick else 3
    eight = eight_images(photo_images)
    images = problems.efficientnet_input(eight)
    model, layer = problems.efficientnet_softmax()
    cam = imgexplain.CAM(model, layer=layer, method="gradcam")
    row = {"model": "EfficientNet-Lite0 + softmax", "framework": "PyTorch", "layer": layer.split(".")[-1],
           "peer": gradcam.label if gradcam else None}
    n_batch1 = time_ours_and_floor(row, cam, torch_floor(model, model.get_submodule(layer)), images, quick, repeats)
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


def with_peer(name, notes, measure):
    """``measure(peer)`` with the peer's worker (None when it cannot start), closed afterwards; the
    result and the peer's versions."""
    peer = start_peer(name, notes)
    try:
        return measure(peer), (peer.versions if peer else {})
    finally:
        if peer is not None:
            peer.close()


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


def section_lines(rows):
    """The section's Markdown lines (after its first paragraph)."""
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


def run(quick, photo_images, command, output=BENCHMARKS_MD):
    """Measure, write the section "Grad-CAM speed" of ``output``, and return the rows of the table."""
    load_before = load_average()
    notes = []
    rows, eli5 = with_peer("eli5", notes, lambda peer: keras_rows(peer, quick, photo_images))
    torch, gradcam = with_peer("gradcam", notes, lambda peer: torch_rows(peer, quick, photo_images))
    rows += torch
    peer_versions = {"eli5": eli5.get("version"), "keras": eli5.get("keras"), "tensorflow": eli5.get("tensorflow"),
                     "pytorch-grad-cam": gradcam.get("version")}
    lines = [context(command, load_before, versions(peer_versions)), "",
             *section_lines(rows), *([""] if notes else []), *(f"- {note}" for note in notes)]
    write_section(TITLE, "\n".join(lines), output)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and images; MobileNetV2 only on Keras")
    parser.add_argument("--output", default=str(BENCHMARKS_MD), help="the Markdown file whose section is rewritten")
    args = parser.parse_args(argv)
    run(args.quick, photos(), command_line("bench.cam_speed", argv), args.output)


if __name__ == "__main__":
    main()
