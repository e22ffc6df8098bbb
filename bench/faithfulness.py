"""Deletion and insertion AUC of every CAM method, a random map and both libraries' anchors, on the photos.

    python -m bench.faithfulness [--quick] [--anchors bench/out/anchors.json] [--output BENCHMARKS.md]

EfficientNet-Lite0 (PyTorch, softmax), `imgexplain.evaluate`'s curves. The anchors are those of the
photos found by `python -m bench.anchors` (its bench/out/anchors.json; seed 0) or, in `python -m
bench.run`, by the same run. Writes the section "Deletion and insertion AUC" of BENCHMARKS.md.
"""
import argparse
import json
from pathlib import Path

import numpy as np

from bench import problems
from bench.benchmarks_md import BENCHMARKS_MD, write_section
from bench.common import as_explanation, command_line, context, load_average, log, photos, versions
from bench.problems import OUT, PHOTOS, SLIC_KWARGS

TITLE = "Deletion and insertion AUC"
CAM_METHODS = ("gradcam", "gradcam++", "hirescam", "layercam", "scorecam", "eigencam")


def photo_anchor_rows(path):
    """The photos' anchors (seed 0, both libraries) of a bench/out/anchors.json; none when it is missing."""
    if not path.exists():
        return []
    rows = json.loads(path.read_text())["rows"]
    return [row for row in rows if row["set"] == "photos" and row["seed"] == 0]


def measure(quick, photo_images, anchor_rows):
    """{saliency: (deletion AUC zeros, deletion AUC blur, insertion AUC blur, photos)}, the photos' names,
    and the number of steps of each curve."""
    from skimage.segmentation import slic

    import imgexplain
    from imgexplain.evaluate import deletion_curve, insertion_curve, saliency_from_anchor

    names = PHOTOS[:1] if quick else PHOTOS
    steps = 10 if quick else 50
    model, layer = problems.efficientnet_softmax()
    predictor = problems.EfficientNetPredictor()
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
            saliency = np.asarray(imgexplain.CAM(model, layer=layer, method=method)(
                problems.efficientnet_input(image[None]), targets=target))[0]
            record(method, image, saliency, target)
        record("random map", image, np.random.default_rng(index).random((7, 7)), target)
        segments = slic(image / 255.0, **SLIC_KWARGS)  # the anchors' superpixels (bench.anchors.photo_rows)
        for row in anchor_rows:
            if row["problem"] == f"photo:{name}":
                record(f"anchor ({row['library']})", image, saliency_from_anchor(as_explanation(row, segments)),
                       target, segments=segments)
        log(f"faithfulness {name} done")
    aucs = {method: (*np.mean(values, axis=0).tolist(), len(values)) for method, values in results.items()}
    return aucs, list(names), steps


def section_lines(aucs, names, steps):
    """The section's Markdown lines (after its first paragraph)."""
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
        lines += ["", "Anchors are not in this table: no anchors of the photos were found in this run (quick mode, "
                  "or no bench/out/anchors.json from `python -m bench.anchors`)."]
    return lines


def run(quick, photo_images, anchor_rows, command, output=BENCHMARKS_MD):
    """Measure, write the section "Deletion and insertion AUC" of ``output``, and return the mean AUCs."""
    load_before = load_average()
    aucs, names, steps = measure(quick, photo_images, anchor_rows)
    lines = [context(command, load_before, versions()), "", *section_lines(aucs, names, steps)]
    write_section(TITLE, "\n".join(lines), output)
    return aucs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one photo, 10 steps, no Score-CAM and no anchors")
    parser.add_argument("--anchors", default=str(OUT / "anchors.json"),
                        help="the photos' anchors, as `python -m bench.anchors` writes them")
    parser.add_argument("--output", default=str(BENCHMARKS_MD), help="the Markdown file whose section is rewritten")
    args = parser.parse_args(argv)
    anchor_rows = [] if args.quick else photo_anchor_rows(Path(args.anchors))
    run(args.quick, photos(), anchor_rows, command_line("bench.faithfulness", argv), args.output)


if __name__ == "__main__":
    main()
