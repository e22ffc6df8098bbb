"""imgexplain's CAM against pytorch-grad-cam, side by side in one run, on what its users rely on:
a ViT explained through reshape_transform, and EfficientNet-Lite0 with two target layers and
aug_smooth. Writes its section of BENCHMARKS.md.

    python -m bench.cam_parity [--repeats 3] [--output BENCHMARKS.md]

Both sides get the same model (the ViT's weights are saved here and loaded by the worker; the
EfficientNet is bench/problems.py's, with a softmax), the same five photos and the same protocol
(batch 1, the best of ``repeats`` after a warm-up call), maps at the input size (224x224) and each
image's top class. Agreement is Spearman's rank correlation of each image's two maps.
"""
import argparse
import os
import platform
import sys
from datetime import datetime, timezone

import numpy as np

from bench import problems, vit_model
from bench.benchmarks_md import BENCHMARKS_MD, write_section
from bench.common import command_line, log, photos, save
from bench.peers import Peer
from bench.problems import OUT

TITLE = "CAM parity with pytorch-grad-cam"


def spearman(ours, theirs):
    """Each image's Spearman correlation; 1 where both maps are the same constant (all zero), 0 where
    only one of them is constant."""
    from scipy.stats import spearmanr

    rho = []
    for a, b in zip(ours, theirs):
        if np.ptp(a) == 0 or np.ptp(b) == 0:
            rho.append(1.0 if np.allclose(a, b) else 0.0)
        else:
            rho.append(spearmanr(a.ravel(), b.ravel()).statistic)
    return np.array(rho)


def ours_vit(images, weights_path, repeats):
    import imgexplain

    model = vit_model.load(weights_path)
    cam = imgexplain.CAM(model, layer="blocks.3.norm1", reshape_transform=vit_model.reshape_transform,
                         size="input")
    automatic = imgexplain.CAM(model, size="input")
    automatic(images[:1])
    timing = problems.seconds_per_image(cam, images, 1, repeats)
    return cam(images), timing, automatic.layer


def ours_efficientnet(images, repeats):
    import imgexplain

    model, layer = problems.efficientnet_softmax()
    cam = imgexplain.CAM(model, layer=[problems.EFFICIENTNET_BLOCK_10, layer], size="input")

    def explain(batch):
        return cam(batch, aug_smooth=True)

    timing = problems.seconds_per_image(explain, images, 1, repeats)
    return np.concatenate([explain(images[i:i + 1]) for i in range(len(images))]), timing


def table(rows):
    lines = ["| model | setting | Spearman median | Spearman worst | imgexplain s/image | "
             "pytorch-grad-cam s/image | speed-up |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['model']} | {row['setting']} | {np.median(row['rho']):.3f} | {row['rho'].min():.3f} | "
                     f"{row['ours']:.3f} | {row['theirs']:.3f} | {row['theirs'] / row['ours']:.2f}x |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default=str(BENCHMARKS_MD), help="the Markdown file whose section is rewritten")
    args = parser.parse_args(argv)
    import torch

    photo_images = photos()
    images_path = save("cam-parity-photos", photo_images)
    images = problems.efficientnet_input(photo_images)
    torch.manual_seed(0)
    weights_path = OUT / "inputs" / "cam-parity-vit.pt"
    torch.save(vit_model.SmallViT().state_dict(), weights_path)
    peer = Peer("gradcam", worker="cam_parity_worker")
    rows = []
    try:
        log("ViT: imgexplain")
        ours, our_timing, automatic = ours_vit(images, weights_path, args.repeats)
        log("ViT: pytorch-grad-cam")
        theirs = peer.ask("vit", images_path=images_path, weights_path=str(weights_path),
                          maps_path=str(OUT / "cam-parity-vit.npy"), repeats=args.repeats)
        rows.append({"model": "ViT (4 blocks, 192 wide, 14x14 patches, random weights)",
                     "setting": "`blocks[-1].norm1`, reshape_transform", "rho": spearman(
                         ours, np.load(OUT / "cam-parity-vit.npy")),
                     "ours": our_timing["best"], "theirs": theirs["timing"]["best"]})
        log("EfficientNet-Lite0: imgexplain")
        ours, our_timing = ours_efficientnet(images, args.repeats)
        log("EfficientNet-Lite0: pytorch-grad-cam")
        theirs = peer.ask("efficientnet", images_path=images_path, maps_path=str(OUT / "cam-parity-effnet.npy"),
                          repeats=args.repeats)
        rows.append({"model": "EfficientNet-Lite0 (ImageNet weights, softmax)",
                     "setting": "`_blocks[10]` + `_head_activation`, aug_smooth", "rho": spearman(
                         ours, np.load(OUT / "cam-parity-effnet.npy")),
                     "ours": our_timing["best"], "theirs": theirs["timing"]["best"]})
    finally:
        peer.close()
    load = os.getloadavg()[0]
    text = f"""`{command_line("bench.cam_parity", argv)}` ({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {platform.processor() or platform.machine()},
{os.cpu_count()} cores, load average {load:.1f}: other work was running; {peer.label}
{peer.versions['version']}, torch {peer.versions['torch']}). Five photos (skimage's {", ".join(problems.PHOTOS)}) at
224x224, each image's top class, maps at the input size, batch 1, best of {args.repeats} after a warm-up call,
the two libraries one after the other in the same run. `layer=None` on the ViT picks `{automatic}`.

{table(rows)}

Spearman is taken per image over the 224x224 pixels of the two maps (1 where both are all zero, as the random
ViT gives for some images). With aug_smooth, both explain the top class of the image itself in all six
augmentations (flips x scalings 0.9, 1, 1.1): pytorch-grad-cam is given it as a `ClassifierOutputTarget`, found
by one more forward pass inside its timing. The maps are otherwise computed the same way (per layer: weighted
sum, rectified, scaled to [0, 1], bilinear to 224x224; then averaged).
"""
    write_section(TITLE, text, args.output)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
