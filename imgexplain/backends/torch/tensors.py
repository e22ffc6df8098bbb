"""One image's output as a torch tensor: what the CAM targets (:mod:`imgexplain.targets`) compute on it."""
from __future__ import annotations

import numpy as np
import torch


def tensor_sum(value: torch.Tensor) -> torch.Tensor:
    """The sum of all of ``value``'s elements."""
    return value.sum()


def tensor_softmax(value: torch.Tensor) -> torch.Tensor:
    """The softmax over the last axis."""
    return torch.softmax(value, dim=-1)


def tensor_mask(mask: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """``mask`` as a tensor on the device and of the dtype of ``like``."""
    return torch.as_tensor(mask, device=like.device, dtype=like.dtype)


def tensor_numpy(value: torch.Tensor) -> np.ndarray:
    """``value``'s numbers as a numpy array (detached from the graph, on the CPU)."""
    return value.detach().float().cpu().numpy()
