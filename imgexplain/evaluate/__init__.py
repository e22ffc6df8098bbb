"""Faithfulness of explanations.

- :func:`deletion_curve` and :func:`insertion_curve` (:mod:`.curves`): remove (or insert) pixels or
  superpixels from the most to the least salient and follow the target's probability;
  the area under the curve summarises it (Petsiuk et al., "RISE", BMVC 2018).
- :func:`anchor_precision` and :func:`saliency_from_anchor` (:mod:`.anchors`): the precision of an
  anchor measured on fresh perturbed samples, to check the precision an explainer claims.
- :func:`randomization_check` (:mod:`.randomization`): the model-parameter randomization test
  (Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018).

Only numpy, scipy and scikit-image are imported here; :func:`randomization_check` clones and
randomizes the model through its framework's backend (:mod:`imgexplain.backends`).
"""
from imgexplain.evaluate.anchors import anchor_precision, saliency_from_anchor
from imgexplain.evaluate.curves import BASELINES, Curve, deletion_curve, insertion_curve
from imgexplain.evaluate.randomization import randomization_check

__all__ = [
    "BASELINES",
    "Curve",
    "deletion_curve",
    "insertion_curve",
    "saliency_from_anchor",
    "anchor_precision",
    "randomization_check",
]
