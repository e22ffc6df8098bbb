"""alibi 0.9.6 side of the anchor benchmarks (runs in bench/.venvs/alibi)."""
import time

import numpy as np
from alibi.explainers import AnchorImage

import anchor_problems  # tests/anchor_problems.py (bench/__init__.py puts tests/ on the path)

from bench import problems
from bench.workers.protocol import serve

_PREDICTORS = {}


def _efficientnet():
    if "efficientnet" not in _PREDICTORS:
        _PREDICTORS["efficientnet"] = problems.EfficientNetPredictor()
    return _PREDICTORS["efficientnet"]


def _explain(predictor, image, segments, explain_kwargs, seed, images_background=None):
    counted = problems.Counted(predictor)
    explainer = AnchorImage(counted, image.shape, segmentation_fn=problems.FixedSegmentation(segments),
                            images_background=images_background, seed=seed)
    counted.reset()  # the constructor's probe call is not part of explain()
    np.random.seed(seed)  # seed 000's way of making alibi reproducible
    began = time.perf_counter()
    explanation = explainer.explain(image, **explain_kwargs)
    wall = time.perf_counter() - began
    raw = explanation.data["raw"]
    return {
        "feature": [int(f) for f in raw["feature"]],
        "precision": float(np.ravel(explanation.precision)[0]),
        "coverage": float(explanation.coverage),
        "success": bool(raw["success"]),
        "wall": wall,
        "num_preds": int(raw["num_preds"]),
        **counted.counts(),
    }


def photo(image_path, segments_path, explain_kwargs, seed):
    """EfficientNet-Lite0's anchor of the photo saved at ``image_path``."""
    return _explain(_efficientnet(), np.load(image_path), np.load(segments_path), explain_kwargs, seed)


def generated(index, problem_seed, seed, family="mixed"):
    """Problem ``index`` of tests/anchor_problems.py's ``family`` and ``problem_seed``, with its own arguments."""
    spec = anchor_problems.make_problem(index, problem_seed, family)
    return _explain(spec.predictor(), spec.image(), spec.segments(), spec.explain_kwargs(), seed,
                    images_background=spec.backgrounds())


if __name__ == "__main__":
    import alibi

    serve({"photo": photo, "generated": generated, "version": lambda: {"version": alibi.__version__}})
