"""Peak memory of one anchor explanation of a large image, with a predictor that costs almost nothing.

    python -m bench.anchor_memory --side 2000

The image is skimage's ``astronaut`` resized to side x side (float32, 0..1) on a 5 x 5 grid of superpixels;
the predictor says class 1 while superpixels 6 and 18 are intact (the true anchor), so the search sends
about a thousand perturbed images to the model, a few hundred per call. It prints, as JSON, the peak
resident memory of the process (``ru_maxrss``) before and after the explanation, the wall time and the
model use. The explanation keeps ``n_covered_ex`` example images (float64) per kind and anchor step.
"""
import argparse
import json
import resource
import time

import numpy as np
from skimage.data import astronaut
from skimage.transform import resize

from imgexplain import AnchorImage
from imgexplain.segmentation import grid_segments

NEEDED = (6, 18)


def peak_rss_mb():
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-covered-ex", type=int, default=10, help="examples kept per anchor step")
    args = parser.parse_args()
    image = resize(astronaut(), (args.side, args.side), anti_aliasing=True).astype(np.float32)
    cell = args.side // 5
    segments = grid_segments(image.shape[:2], (cell, cell))
    cells = [np.s_[:, (k // 5) * cell:(k // 5 + 1) * cell, (k % 5) * cell:(k % 5 + 1) * cell] for k in NEEDED]
    batch_sizes = []

    def predictor(images):
        batch_sizes.append(len(images))
        held = np.all([np.all(images[c] == image[c[1:]], axis=(1, 2, 3)) for c in cells], axis=0)
        return np.stack([~held, held], axis=1).astype(np.float32)

    before = peak_rss_mb()
    start = time.perf_counter()
    explanation = AnchorImage(predictor, image.shape, segmentation_fn=lambda _: segments,
                              seed=args.seed).explain(image, n_covered_ex=args.n_covered_ex)
    print(json.dumps({
        "side": args.side,
        "image_mb": round(image.nbytes / 2**20, 1),
        "peak_rss_mb_before_explain": before,
        "peak_rss_mb": peak_rss_mb(),
        "wall_s": round(time.perf_counter() - start, 1),
        "anchor": sorted(explanation.raw["feature"]),
        "precision": explanation.precision,
        "model_calls": explanation.raw["model_calls"],
        "images": explanation.raw["num_preds"],
        "largest_batch": max(batch_sizes),
        "samples": explanation.raw["n_samples"],
        "samples_from_memo": explanation.raw["samples_from_memo"],
        "determinism_checks": explanation.raw.get("determinism_checks"),
        "memo_used": explanation.raw.get("memo_used"),
    }))


if __name__ == "__main__":
    main()
