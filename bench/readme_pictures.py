"""README's pictures, drawn by the current code: ``python -m bench.readme_pictures``.

Runs README's anchor example (skimage's chelsea, the built-in EfficientNet-Lite0, the same arguments) and
its Grad-CAM example, saves ``docs/anchor-chelsea.png`` and ``docs/gradcam-chelsea.png``, writes what they
show (the anchor's superpixels, precision, coverage) and a fingerprint of the code that draws them to
``docs/pictures.json``, and rewrites README's caption between its ``readme-pictures`` markers.
``tests/test_readme.py`` fails when the fingerprint or the caption is stale: after a change to the anchor
search, the superpixels, the pictures or this script, run this module again (about a minute).
"""
import hashlib
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
RECORD = DOCS / "pictures.json"
README = ROOT / "README.md"
CAPTION = re.compile(r"(<!-- readme-pictures: caption -->\n)(.*?)(\n<!-- /readme-pictures -->)", re.S)
# The code whose changes can change the pictures.
SOURCES = ("imgexplain/anchors/*.py", "imgexplain/render/*.py", "imgexplain/cam/*.py", "imgexplain/segmentation.py",
           "imgexplain/predictor.py", "imgexplain/datasets.py", "imgexplain/_pixels.py", "imgexplain/zoo/*.py",
           "bench/readme_pictures.py")
SEGMENTATION_KWARGS = {"n_segments": 15, "compactness": 20, "sigma": 0.5, "start_label": 0}


def code_fingerprint() -> str:
    """SHA-256 of the files of :data:`SOURCES`, by path and content."""
    digest = hashlib.sha256()
    for path in sorted(path for pattern in SOURCES for path in ROOT.glob(pattern)):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def caption(record: dict) -> str:
    """README's caption of the anchor picture, from what :func:`main` recorded."""
    features = record["anchor"]
    ids = ", ".join(map(str, features))
    kept = (f"keeping superpixel {ids} alone as it is" if len(features) == 1
            else f"keeping superpixels {ids} as they are")
    return (f"*The anchor (middle): {kept} keeps the prediction \"{record['label']}\" in "
            f"{record['precision']:.0%} of the samples where the other superpixels are perturbed (precision "
            f"{record['precision']:.2f}), and it applies to {record['coverage']:.0%} of all perturbed samples "
            f"(coverage {record['coverage']:.2f}: for images, (1 - p_sample) to the power of the anchor's size).\n"
            "Right: the superpixels and their ids.*")


def rewrite_caption(text: str, record: dict) -> str:
    """README's ``text`` with the caption between the markers made from ``record``."""
    if not CAPTION.search(text):
        raise ValueError("README.md has no '<!-- readme-pictures: caption -->' ... '<!-- /readme-pictures -->' block")
    return CAPTION.sub(lambda match: match[1] + caption(record) + match[3], text)


def main() -> None:
    import numpy as np

    import imgexplain
    from imgexplain.datasets import load_samples

    model = imgexplain.zoo.efficientnet_lite0(framework="torch")
    image = load_samples(names=["chelsea"])["chelsea"].astype(np.float32)
    explainer = imgexplain.AnchorImage(model.predictor, image.shape, segmentation_fn="slic",
                                       segmentation_kwargs=dict(SEGMENTATION_KWARGS), seed=0)
    explanation = explainer.explain(image, threshold=0.95, p_sample=0.5, tau=0.25)
    names = [c.name for c in imgexplain.zoo.imagenet_class_index()]
    predicted = int(explanation.raw["prediction"][0])
    figure = imgexplain.render.plot_anchor(explanation, labels=names)
    figure.savefig(DOCS / "anchor-chelsea.png", dpi=72, bbox_inches="tight")
    cam = imgexplain.explain_prediction(model.model, model.preprocess(image[None]), image=image.astype(np.uint8))
    cam.plot(labels=names).savefig(DOCS / "gradcam-chelsea.png", dpi=72, bbox_inches="tight")
    record = {"anchor": [int(k) for k in explanation.raw["feature"]], "label": names[predicted].replace("_", " "),
              "class": predicted, "precision": round(float(explanation.precision), 4),
              "coverage": round(float(explanation.coverage), 4), "code": code_fingerprint()}
    RECORD.write_text(json.dumps(record, indent=2) + "\n")
    README.write_text(rewrite_caption(README.read_text(), record))
    print(json.dumps(record))


if __name__ == "__main__":
    main()
