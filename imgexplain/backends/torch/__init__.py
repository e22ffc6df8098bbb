"""The PyTorch backend: CAM with forward hooks (``cam``), the fast predictor and device choice
(``runtime``), and cloning, weight randomisation and saved files (``model``).

Only :func:`owns` is defined here, without importing torch; the other names load their module, and
torch with it, on first use.
"""
from __future__ import annotations

import sys
from typing import Any

from imgexplain._lazy import lazy_attributes

MODEL_TYPE = "a torch.nn.Module"
# Saved kinds -> whether CAM reaches their layers (a TorchScript file hides them).
SAVED_KINDS = {"exported": True, "torchscript": False}
CAM_COMPUTES = frozenset({"gradients", "hessian", "masked passes", "ablation", "nothing", "bias gradients"})


def owns(model: Any) -> bool:
    """Whether ``model`` is a ``torch.nn.Module`` (False when torch was never imported)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)



def owns_tensor(value: Any) -> bool:
    """Whether ``value`` is a torch.Tensor (False when torch was never imported)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


# Each name -> the module that defines it.
LAZY = {
    "CAMBackend": "cam",
    "TorchPredictor": "runtime", "from_torch": "runtime", "torch_device": "runtime",
    "predict": "model", "spatial_size": "model", "clone": "model", "counterpart": "model",
    "weighted_layers": "model", "randomize": "model", "layer_name": "model",
    "load_saved": "model", "saved_predictor": "model", "two_outputs": "model",
    "tensor_sum": "tensors", "tensor_softmax": "tensors", "tensor_mask": "tensors", "tensor_numpy": "tensors",
    "tensor_log_softmax": "tensors", "guided_gradients": "guided",
}
__getattr__ = lazy_attributes(__name__, LAZY)
