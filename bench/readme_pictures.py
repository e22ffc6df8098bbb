"""README's pictures, drawn by the current code: ``python -m bench.readme_pictures``.

Runs README's anchor example (skimage's chelsea, the built-in EfficientNet-Lite0, the same arguments) and
its Grad-CAM example, saves ``docs/anchor-chelsea.png`` and ``docs/gradcam-chelsea.png``, writes what they
show (the anchor's superpixels, precision, coverage) and a fingerprint of the code that draws them to
``docs/pictures.json``, and rewrites README's caption between its ``readme-pictures`` markers (the record
and the caption: tests/readme_record.py). ``tests/test_readme.py`` fails when the fingerprint or the
caption is stale: after a change to the anchor search, the superpixels, the pictures or this script, run
this module again (about a minute).
"""
import json
from pathlib import Path

from readme_record import RECORD, code_fingerprint, rewrite_caption  # tests/readme_record.py (see bench/__init__.py)

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
SEGMENTATION_KWARGS = {"n_segments": 15, "compactness": 20, "sigma": 0.5, "start_label": 0}


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
