"""Randomization sanity check: how much each CAM method's maps change when the model's weights are redrawn.

    python -m bench.randomization [--quick] [--output BENCHMARKS.md]

EfficientNet-Lite0 (PyTorch, softmax) on the photos, `imgexplain.evaluate.randomization_check`. Writes the
section "Randomization sanity check" of BENCHMARKS.md.
"""
import argparse

import numpy as np

from bench import problems
from bench.benchmarks_md import BENCHMARKS_MD, write_section
from bench.common import command_line, context, load_average, log, photos, versions

TITLE = "Randomization sanity check"


def measure(quick, photo_images):
    """{method: (mean Spearman, mean SSIM, constant random maps)} and the number of images."""
    from imgexplain.evaluate import randomization_check

    methods = ["gradcam"] if quick else ["gradcam", "gradcam++", "hirescam", "layercam", "eigencam"]
    images = problems.efficientnet_input(photo_images[:2] if quick else photo_images)
    model, layer = problems.efficientnet_softmax()
    rows = {}
    for method in methods:
        result = randomization_check(model, images, method=method, layer=layer, seed=0)
        constant = int(sum(np.ptp(m) == 0 for m in result["random_maps"]))
        rows[method] = (float(np.mean(result["spearman"])), float(np.mean(result["ssim"])), constant)
        log(f"randomization {method}: {rows[method]}")
    return rows, len(images)


def section_lines(rows, n_images):
    """The section's Markdown lines (after its first paragraph)."""
    lines = [f"`imgexplain.evaluate.randomization_check`: maps of EfficientNet-Lite0 against a copy with every "
             f"weight tensor redrawn at random (same mean and standard deviation), same targets, {n_images} photos. "
             "Low similarity means the method depends on the model, as it should. A constant map (all zero: "
             "no positive evidence for the target in the random model) has no ranking and counts as Spearman 0.",
             "", "| method | Spearman (mean) | SSIM (mean) | constant random maps |", "|---|---|---|---|"]
    lines += [f"| {method} | {rho:.3f} | {ssim:.3f} | {constant}/{n_images} |"
              for method, (rho, ssim, constant) in rows.items()]
    return lines


def run(quick, photo_images, command, output=BENCHMARKS_MD):
    """Measure, write the section "Randomization sanity check" of ``output``, and return the rows."""
    load_before = load_average()
    rows, n_images = measure(quick, photo_images)
    lines = [context(command, load_before, versions()), "", *section_lines(rows, n_images)]
    write_section(TITLE, "\n".join(lines), output)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Grad-CAM only, on two photos")
    parser.add_argument("--output", default=str(BENCHMARKS_MD), help="the Markdown file whose section is rewritten")
    args = parser.parse_args(argv)
    run(args.quick, photos(), command_line("bench.randomization", argv), args.output)


if __name__ == "__main__":
    main()
