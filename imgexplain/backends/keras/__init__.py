"""The Keras 3 backend (TensorFlow): CAM by swapping layers' ``call`` (``cam``), walking nested models
(``layers``), and prediction, cloning, weight randomisation and saved files (``model``).

Only :func:`owns` is defined here, without importing Keras; the other names load their module, and
Keras and TensorFlow with it, on first use.
"""
from __future__ import annotations

import sys
from typing import Any

from imgexplain._lazy import lazy_attributes

MODEL_TYPE = "a keras.Model"
SAVED_KINDS = {"keras": True}
CAM_COMPUTES = frozenset({"gradients", "masked passes", "ablation", "nothing"})


def owns(model: Any) -> bool:
    """Whether ``model`` is a Keras 3 ``keras.Model`` (False when Keras was never imported)."""
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(model, keras.Model)



def owns_tensor(value: Any) -> bool:
    """Whether ``value`` is a TensorFlow tensor (False when TensorFlow was never imported)."""
    tensorflow = sys.modules.get("tensorflow")
    return tensorflow is not None and bool(tensorflow.is_tensor(value))


# Each name -> the module that defines it.
LAZY = {
    "CAMBackend": "cam",
    "predict": "model", "spatial_size": "model", "clone": "model", "counterpart": "model",
    "weighted_layers": "model", "randomize": "model", "layer_name": "model",
    "load_saved": "model", "saved_predictor": "model", "two_outputs": "model",
    "tensor_sum": "tensors", "tensor_softmax": "tensors", "tensor_mask": "tensors", "tensor_numpy": "tensors",
    "tensor_log_softmax": "tensors",
}
__getattr__ = lazy_attributes(__name__, LAZY)
