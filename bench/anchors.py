"""Anchors: imgexplain and alibi 0.9.6 side by side on generated problems and on the photos.

    .venv/bin/python -m bench.anchors [--problems 120] [--family-problems 40] [--problem-seeds 1] [--photo-seeds 1]
                                      [--no-photos] [--no-jpeg] [--output BENCHMARKS.md]

Generated problems (tests/anchor_problems.py: the mixed family and issue 19's cliff and near-threshold families)
have a known true precision for any anchor; the photos are EfficientNet-Lite0 on skimage's sample photos with
seed 000's arguments, as arrays and as JPEG round trips (quality 75). Both libraries run one after the
other on the same inputs, alibi in its own virtual environment (bench/peers.py). The result
replaces the "Anchors vs alibi" section of BENCHMARKS.md; `make bench` writes the same section.
"""
import argparse
import json
import logging
import os
import sys
import time

import numpy as np

import anchor_problems  # tests/anchor_problems.py (bench/__init__.py puts tests/ on the path)

from bench import problems
from bench.benchmarks_md import write_section
from bench.common import as_explanation, log, machine, photos, save
from bench.peers import start_peer
from bench.problems import ANCHOR_ARGS, OUT, PHOTOS, ROOT, SLIC_KWARGS

N_PROBLEMS = 120
EPSILON_STOP = 0.05  # the default of both libraries
FRESH_PHOTO_SAMPLES = 300  # each costs an EfficientNet-Lite0 evaluation
JPEG_QUALITY = 75
FAMILY_PROBLEMS = 40
SECTION = "## Anchors vs alibi"


def ours(predictor, image, segments, seed, explain_kwargs, backgrounds=None):
    """imgexplain's anchor, counted by the same wrapper as alibi's."""
    import imgexplain

    counted = problems.Counted(predictor)
    explainer = imgexplain.AnchorImage(counted, image.shape, segmentation_fn=problems.FixedSegmentation(segments),
                                       images_background=backgrounds, seed=seed)
    counted.reset()
    began = time.perf_counter()
    explanation = explainer.explain(image, **explain_kwargs)
    return {"feature": [int(f) for f in explanation.raw["feature"]], "success": bool(explanation.success),
            "precision": float(np.ravel(explanation.precision)[0]), "coverage": float(explanation.coverage),
            "wall": time.perf_counter() - began, **counted.counts()}


def generated_rows(alibi, n_problems, seeds, family="mixed", problem_seeds=(0,)):
    """Both libraries on ``n_problems`` problems of ``family`` from each generator seed of ``problem_seeds``, with
    each explainer seed of ``seeds``; a problem is named "family generator-seed/index"."""
    rows = []
    for problem_seed in problem_seeds:
        for problem in anchor_problems.generate(n_problems, problem_seed, family):
            name = f"{family} {problem_seed}/{problem.index}"
            for seed in seeds:
                pair = {"imgexplain": ours(problem.predictor(), problem.image(), problem.segments(), seed,
                                           problem.explain_kwargs(), problem.backgrounds())}
                if alibi is not None:
                    pair["alibi"] = alibi.ask("generated", index=problem.index, problem_seed=problem_seed, seed=seed,
                                              family=family)
                for library, result in pair.items():
                    rows.append({"set": "generated", "family": family, "problem": name, "kind": problem.kind,
                                 "library": library, "seed": seed, "threshold": problem.threshold,
                                 "true_precision": problem.true_precision(result["feature"]), **result})
                log(f"anchors generated {name} ({problem.kind}, K={problem.n_features}) seed {seed}: "
                    + ", ".join(f"{library} {r['images']} images" for library, r in pair.items()))
    return rows


def jpeg_photos(quality=JPEG_QUALITY):
    """The sample photos as a new user gets them from a file: each skimage photo at its own size saved as a JPEG
    of ``quality`` (Pillow) and read back with ``imgexplain.datasets.load_image`` at 224x224, float32."""
    from io import BytesIO

    from PIL import Image
    from skimage import data

    from imgexplain.datasets import load_image

    named = []
    for name in PHOTOS:
        image = np.asarray(getattr(data, name)(), dtype=np.float64)
        if image.ndim == 2:  # horse is a black and white silhouette
            image = np.repeat(image[..., None] * (255.0 / image.max()), 3, axis=2)
        buffer = BytesIO()
        Image.fromarray(np.clip(np.round(image[..., :3]), 0, 255).astype(np.uint8)).save(buffer, "JPEG",
                                                                                         quality=quality)
        buffer.seek(0)
        named.append((f"{name} jpeg", load_image(Image.open(buffer), target_size=(224, 224)).astype(np.float32)))
    return named


def photo_rows(alibi, named_images, predictor, seeds, n_fresh=FRESH_PHOTO_SAMPLES):
    """Both libraries on each (name, photo) and seed; the anchor's precision on ``n_fresh`` fresh samples stands
    in for the truth (none when 0)."""
    from skimage.segmentation import slic

    from imgexplain.evaluate import anchor_precision

    rows, segments_of = [], {}
    for name, image in named_images:
        segments = slic(image / 255.0, **SLIC_KWARGS)
        segments_of[name] = segments
        image_path, segments_path = save(f"photo-{name}-image", image), save(f"photo-{name}-segments", segments)
        for seed in seeds:
            pair = {"imgexplain": ours(predictor, image, segments, seed, dict(ANCHOR_ARGS))}
            if alibi is not None:
                pair["alibi"] = alibi.ask("photo", image_path=image_path, segments_path=segments_path,
                                          explain_kwargs=dict(ANCHOR_ARGS), seed=seed)
            for library, result in pair.items():
                fresh = (anchor_precision(predictor, image, as_explanation(result, segments), n=n_fresh,
                                          seed=1000 + seed)["precision"] if n_fresh else float("nan"))
                rows.append({"set": "photos", "family": "photos", "problem": f"photo:{name}",
                             "kind": "jpeg photo" if name.endswith("jpeg") else "photo", "library": library,
                             "seed": seed, "threshold": ANCHOR_ARGS["threshold"], "true_precision": fresh, **result})
            log(f"anchors photo {name} seed {seed}: "
                + ", ".join(f"{library} {r['feature']} {r['images']} images" for library, r in pair.items()))
    return rows, segments_of


def _pairs(rows):
    """{(problem, seed): {library: row}} for the instances both libraries ran."""
    pairs = {}
    for row in rows:
        pairs.setdefault((row["problem"], row["seed"]), {})[row["library"]] = row
    return {key: pair for key, pair in pairs.items() if len(pair) == 2}


def summarize(rows):
    """The figures of one set of rows (instances both libraries ran)."""
    pairs = list(_pairs(rows).values())
    if not pairs:
        return None
    ours_, theirs = [p["imgexplain"] for p in pairs], [p["alibi"] for p in pairs]
    ratios = np.array([a["images"] / max(o["images"], 1) for o, a in zip(ours_, theirs)])

    def false_success(side):
        return np.mean([r["success"] and r["true_precision"] < r["threshold"] - EPSILON_STOP for r in side])

    worst = int(np.argmin(ratios))
    return {"instances": len(pairs), "worst": (float(ratios[worst]), pairs[worst]["imgexplain"]["problem"],
                                               pairs[worst]["imgexplain"]["seed"], ours_[worst]["images"],
                                               theirs[worst]["images"]),
            "images": (sum(r["images"] for r in ours_), sum(r["images"] for r in theirs)),
            "median_ratio": float(np.median(ratios)), "p10_ratio": float(np.percentile(ratios, 10)),
            "same_anchor": float(np.mean([sorted(o["feature"]) == sorted(a["feature"])
                                          for o, a in zip(ours_, theirs)])),
            "size": (float(np.mean([len(r["feature"]) for r in ours_])),
                     float(np.mean([len(r["feature"]) for r in theirs]))),
            "false_success": (false_success(ours_), false_success(theirs)),
            "success": (float(np.mean([r["success"] for r in ours_])), float(np.mean([r["success"] for r in theirs]))),
            "calls": (sum(r["calls"] for r in ours_), sum(r["calls"] for r in theirs)),
            "overhead": (sum(r["wall"] - r["model_seconds"] for r in ours_),
                         sum(r["wall"] - r["model_seconds"] for r in theirs))}


def groups_of(rows):
    """(name, rows) of every reported group: all generated problems, the mixed family and each of its rule kinds,
    each of issue 19's families, and the photos (arrays, JPEG round trips, both)."""
    generated = [r for r in rows if r["set"] == "generated"]
    photo = [r for r in rows if r["set"] == "photos"]
    groups = [("generated, all", generated), ("mixed, all", [r for r in generated if r["family"] == "mixed"])]
    groups += [(f"mixed, {kind}", [r for r in generated if r["family"] == "mixed" and r["kind"] == kind])
               for kind in anchor_problems.KINDS]
    groups += [(family, [r for r in generated if r["family"] == family]) for family in anchor_problems.FAMILIES[1:]]
    groups += [("photos", [r for r in photo if r["kind"] == "photo"]),
               ("JPEG photos", [r for r in photo if r["kind"] == "jpeg photo"]), ("photos + JPEG", photo)]
    return [(name, group) for name, group in groups if _pairs(group)]


def section_lines(rows, problem_counts, generated_seeds, photo_seeds, command, problem_seeds=(0,)):
    groups = groups_of(rows)
    lines = [f"Command: `{command}`. Images are counted by the same wrapper around the predictor on both sides. "
             "Ratio = alibi's images / imgexplain's, per instance (problem and seed); worst: the instance of the "
             "lowest ratio, with both counts. False success: success=True with true precision below "
             "threshold - epsilon_stop (0.05)."]
    if problem_counts:
        counts = ", ".join(f"{family} {n}" for family, n in problem_counts.items())
        lines += ["", f"Generated problems of `tests/anchor_problems.py` ({counts} from each generator seed "
                  f"{list(problem_seeds)}; explainer seeds {list(generated_seeds)}). "
                  "Mixed: AND rules of 1-3 superpixels, linear-threshold rules, and both with label noise from 1% to "
                  "1% short of 1 - threshold; background images in about one problem in four. Cliff: the empty "
                  "anchor's true precision in [threshold, threshold + 0.04], one to three superpixels each an anchor "
                  "of precision near 1. Near-threshold k: an AND rule on k superpixels whose own anchor has a true "
                  "precision in [threshold, threshold + 0.03]. All: 8-30 superpixels, thresholds 0.9 and 0.95, beam "
                  "sizes 1 and 2, tau 0.15 and 0.25; the true precision of every anchor returned is exact "
                  "(enumeration) or taken on 10,000 fresh samples."]
    if list(photo_seeds):
        lines += ["", f"Photos: EfficientNet-Lite0 (PyTorch, softmax) on {', '.join(PHOTOS)} at 224x224 with seed "
                  f"000's arguments {ANCHOR_ARGS}, batch_size 100, superpixels from skimage slic {SLIC_KWARGS} (the "
                  f"same on both sides), seeds {list(photo_seeds)}; JPEG photos: each photo at its own size saved as a "
                  f"JPEG (quality {JPEG_QUALITY}, Pillow) and read back with imgexplain.datasets.load_image at "
                  "224x224, superpixels computed on the result; their "
                  "\"true\" precision is taken on fresh samples (nan: not measured)."]
    lines.append("")
    lines += targets(dict((name, summarize(group)) for name, group in groups))
    lines += ["", "| set | instances | images ours / alibi | total ratio | median ratio | 10th percentile ratio "
              "| worst | same anchor | mean size ours / alibi | success ours / alibi | false success ours / alibi "
              "| model calls ours / alibi | overhead s ours / alibi |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, group in groups:
        s = summarize(group)
        worst_ratio, worst_problem, worst_seed, worst_ours, worst_alibi = s["worst"]
        lines.append(
            f"| {name} | {s['instances']} | {s['images'][0]} / {s['images'][1]} "
            f"| {s['images'][1] / s['images'][0]:.2f}x "
            f"| {s['median_ratio']:.2f}x | {s['p10_ratio']:.2f}x "
            f"| {worst_ratio:.2f}x ({worst_problem}, seed {worst_seed}: {worst_ours} / {worst_alibi}) "
            f"| {s['same_anchor']:.0%} "
            f"| {s['size'][0]:.2f} / {s['size'][1]:.2f} | {s['success'][0]:.0%} / {s['success'][1]:.0%} "
            f"| {s['false_success'][0]:.1%} / {s['false_success'][1]:.1%} | {s['calls'][0]} / {s['calls'][1]} "
            f"| {s['overhead'][0]:.1f} / {s['overhead'][1]:.1f} |")
    photo = [r for r in rows if r["set"] == "photos"]
    if photo:
        lines += ["", "| photo | seed | library | anchor | success | fresh precision | images | wall s |",
                  "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['problem']} | {r['seed']} | {r['library']} | {sorted(r['feature'])} | {r['success']} "
                  f"| {r['true_precision']:.3f} | {r['images']} | {r['wall']:.1f} |" for r in photo]
    return lines


def targets(summaries):
    """Issue 19's targets, met or not, from the summaries of the groups (see :func:`groups_of`)."""
    def verdict(ok):
        return "met" if ok else "NOT met"

    lines = []
    families = [name for name in summaries if name not in ("generated, all", "photos + JPEG")]
    if families:
        low = [f"{name} {summaries[name]['p10_ratio']:.2f}x" for name in families]
        lines.append("- 10th percentile of the per-instance ratio at least 1.0x on every family and on the photos: "
                     f"**{verdict(all(summaries[name]['p10_ratio'] >= 1.0 for name in families))}** ({', '.join(low)})")
    generated = summaries.get("generated, all")
    if generated:
        ratio = generated["images"][1] / generated["images"][0]
        size_ours, size_alibi = generated["size"]
        false_ours, false_alibi = generated["false_success"]
        lines += [f"- at least 6x fewer images in total on the generated problems: **{verdict(ratio >= 6)}** "
                  f"({ratio:.2f}x)",
                  f"- false-success share no higher than alibi's: **{verdict(false_ours <= false_alibi)}** "
                  f"({false_ours:.1%} / {false_alibi:.1%})",
                  f"- (issue 11) mean anchor size within 10% of alibi's: "
                  f"**{verdict(abs(size_ours / size_alibi - 1) <= 0.1)}** ({size_ours:.2f} / {size_alibi:.2f})"]
    photo = summaries.get("photos + JPEG")
    if photo:
        ratio = photo["images"][1] / photo["images"][0]
        lines += [f"- photos and JPEG photos: at least 5x fewer images in total: **{verdict(ratio >= 5)}** "
                  f"({ratio:.2f}x); no photo costlier than alibi's: **{verdict(photo['worst'][0] >= 1.0)}** "
                  f"(worst {photo['worst'][0]:.2f}x, {photo['worst'][1]})"]
    return ["Targets:", *lines] if lines else []


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=N_PROBLEMS, help="generated problems of the mixed family")
    parser.add_argument("--family-problems", type=int, default=FAMILY_PROBLEMS,
                        help="generated problems of each of issue 19's families (cliff, near-threshold 1-3)")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per generated problem")
    parser.add_argument("--problem-seeds", type=int, default=1,
                        help="generator seeds: each family's problems are drawn from seeds 0, 1, ...")
    parser.add_argument("--photo-seeds", type=int, default=1, help="seeds per photo")
    parser.add_argument("--no-photos", action="store_true")
    parser.add_argument("--no-jpeg", action="store_true", help="the photos as arrays only")
    parser.add_argument("--jpeg-only", action="store_true", help="the photos as JPEG round trips only")
    parser.add_argument("--no-generated", action="store_true")
    parser.add_argument("--photos-without-alibi", action="store_true",
                        help="imgexplain alone on the photos (when the machine is too loaded for alibi's share)")
    parser.add_argument("--fresh-photo-samples", type=int, default=FRESH_PHOTO_SAMPLES)
    parser.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
    args = parser.parse_args(argv)
    logging.getLogger("imgexplain").setLevel(logging.ERROR)
    (OUT / "inputs").mkdir(parents=True, exist_ok=True)
    notes = []
    alibi_needed = not args.no_generated or not (args.no_photos or args.photos_without_alibi)
    alibi = start_peer("alibi", notes) if alibi_needed else None
    seeds, photo_seeds = range(args.seeds), range(args.photo_seeds)
    problem_counts = {} if args.no_generated else {
        family: args.problems if family == "mixed" else args.family_problems for family in anchor_problems.FAMILIES}
    rows = []
    for family, n_problems in problem_counts.items():
        rows += generated_rows(alibi, n_problems, seeds, family, range(args.problem_seeds))
    if not args.no_photos:
        named = list(zip(PHOTOS, photos()))
        jpeg = [] if args.no_jpeg else jpeg_photos()
        named = jpeg if args.jpeg_only else named + jpeg
        rows += photo_rows(None if args.photos_without_alibi else alibi, named, problems.EfficientNetPredictor(),
                           photo_seeds, args.fresh_photo_samples)[0]
    if alibi is not None:
        alibi.close()
    command = "python -m bench.anchors " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = section_lines(rows, problem_counts, [] if args.no_generated else seeds,
                          [] if args.no_photos else photo_seeds, command.strip(), range(args.problem_seeds))
    lines += [f"- {note}" for note in notes]
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    lines += ["", f"Machine: {machine()}; load average at the end: "
              f"{load} (other work was running; image counts do not depend on it)."]
    (OUT / "anchors.json").write_text(json.dumps({"command": command.strip(), "rows": rows}, indent=1, default=str))
    write_section(SECTION.removeprefix("## "), "\n".join(lines), args.output)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
