"""Every CAM method of pytorch-grad-cam side by side with imgexplain's class of the same name, on
EfficientNet-Lite0 (ImageNet weights, softmax), in one run. Writes its section of BENCHMARKS.md.

    python -m bench.cam_methods [--repeats 1] [--output BENCHMARKS.md]

Both sides: the same model and layer (bench/problems.py), the eight photos of bench/cam_speed.py,
``targets=None`` (each image's top class), maps at the input size (224x224), the best call after one
warm-up call. Seconds per image at batch 1 (the first 4 images) and 8; ScoreCAM and AblationCAM (one
model pass per channel) on block 10's last batch norm (112 channels; the last layer has 1280), at batch 1
on the first image only, ``batch_size = 32`` on both sides.
Agreement: Spearman's rank correlation of the two maps of each image timed at batch 1.
"""
import argparse
import os
import sys

import numpy as np

from bench import problems
from bench.benchmarks_md import BENCHMARKS_MD, write_section
from bench.cam_parity import spearman
from bench.cam_speed import eight_images
from bench.common import command_line, context, load_average, log, photos, save, versions
from bench.peers import Peer
from bench.problems import OUT

TITLE = "CAM methods side by side with pytorch-grad-cam"
BATCH1_IMAGES = 4
PERTURBATION_IMAGES = 1


def ours(class_name, model, layer, images, repeats):
    """imgexplain's class of that name: timings by batch and the maps of the batch-1 images."""
    import imgexplain

    slow = class_name in ("ScoreCAM", "AblationCAM")
    options = {"seed": 0} if class_name == "RandomCAM" else {}
    target = model.get_submodule(problems.EFFICIENTNET_BLOCK_10_PROJECTION) if slow else layer
    with getattr(imgexplain, class_name)(model=model, target_layers=[target], **options) as cam:
        cam.batch_size = 32

        def explain(batch):
            return cam(input_tensor=batch, targets=None)

        count = PERTURBATION_IMAGES if slow else BATCH1_IMAGES
        timings = {str(b): problems.seconds_per_image(explain, images[:count] if b == 1 else images, b,
                                                      repeats)["best"] for b in (1, 8) if b == 1 or not slow}
        return timings, np.concatenate([explain(images[i:i + 1]) for i in range(count)])


def table(rows):
    lines = ["| class | deterministic | batch | imgexplain s/image | pytorch-grad-cam s/image | speed-up | "
             "Spearman median | Spearman worst |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        for batch, mine in row["ours"].items():
            theirs = row["theirs"][batch]
            lines.append(f"| {row['name']} | {'yes' if row['deterministic'] else 'no'} | {batch} | {mine:.3f} | "
                         f"{theirs:.3f} | {theirs / mine:.2f}x | {np.median(row['rho']):.3f} | "
                         f"{row['rho'].min():.3f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--only", nargs="*", help="class names (default: every registry entry)")
    parser.add_argument("--output", default=str(BENCHMARKS_MD), help="the Markdown file whose section is rewritten")
    args = parser.parse_args(argv)
    from imgexplain.cam.methods import REGISTRY

    load_before = load_average()
    eight = eight_images(photos())
    images_path = save("cam-methods-eight", eight)
    images = problems.efficientnet_input(eight)
    model, layer_name = problems.efficientnet_softmax()
    layer = model.get_submodule(layer_name)
    entries = [entry for entry in REGISTRY.values() if not args.only or entry.class_name in args.only]
    names = [entry.class_name for entry in entries]
    peer = Peer("gradcam")
    try:
        log(f"pytorch-grad-cam: {names}")
        maps_path = OUT / "cam-methods-gradcam.npz"
        answer = peer.ask("methods", images_path=images_path, class_names=names, batches=[1, 8],
                          repeats=args.repeats, maps_path=str(maps_path), batch1_images=BATCH1_IMAGES,
                          perturbation_images=PERTURBATION_IMAGES)
        theirs = np.load(maps_path)
        peer_versions = peer.versions
    finally:
        peer.close()
    rows = []
    for entry in entries:
        log(f"imgexplain: {entry.class_name}")
        timings, maps = ours(entry.class_name, model, layer, images, args.repeats)
        rows.append({"name": entry.class_name, "deterministic": entry.deterministic, "ours": timings,
                     "theirs": answer["timings"][entry.class_name], "rho": spearman(maps, theirs[entry.class_name])})
        log(f"{rows[-1]}")
    deterministic = [row for row in rows if row["deterministic"]]
    slower = [f"{row['name']} (batch {b})" for row in rows for b, mine in row["ours"].items()
              if mine > row["theirs"][b]]
    low = [row["name"] for row in deterministic if np.median(row["rho"]) < 0.99]
    text = f"""{context(command_line("bench.cam_methods", argv), load_before,
                     versions({"pytorch-grad-cam": peer_versions.get("version")}))}

EfficientNet-Lite0 (ImageNet weights, softmax), layer `{layer_name}` (7x7x1280), the eight photos of the Grad-CAM
speed section, `targets=None`, maps at 224x224, best call after a warm-up call; batch 1 on the first
{BATCH1_IMAGES} images (ScoreCAM and AblationCAM: on `{problems.EFFICIENTNET_BLOCK_10_PROJECTION}`, 14x14x112, the
first image, batch 1 only), batch 8 on all eight; `OMP_NUM_THREADS={os.environ.get("OMP_NUM_THREADS", "unset")}`
on both sides. Spearman per image over the 224x224 maps of the images timed at batch 1.

Goals: no method slower than pytorch-grad-cam: **{"met" if not slower else "NOT met: " + ", ".join(slower)}**;
Spearman >= 0.99 for the deterministic methods: **{"met" if not low else "NOT met: " + ", ".join(low)}**.

{table(rows)}

Where the maps differ, on purpose:
- **AblationCAM** on a layer with negative values (this batch norm): pytorch-grad-cam sets the ablated channel to
  the layer's minimum minus 1e7 ("deviating from the paper", says its source), imgexplain sets it to zero, as Desai
  and Ramaswamy define it. On a non-negative layer (after a ReLU) both zero the channel.
- **GradCAMPlusPlus**: pytorch-grad-cam adds 1e-6 to the alphas' denominator, `2 G^2 + sum(A) G^3`; the
  gradients of a softmax output are small, so that constant can weigh on the alphas. imgexplain computes the
  paper's alphas (zero where the denominator is zero).
- **RandomCAM** draws random weights: its maps agree with nothing, by design.
"""
    write_section(TITLE, text, args.output)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
