"""Guided backpropagation (Springenberg et al., 2015) for PyTorch: the gradient of a class score with
respect to the input, where every ``torch.nn.ReLU`` passes back only positive gradients, and only where
its input was positive. The ReLUs are wrapped by forward hooks for one pass; the model is not changed."""
from __future__ import annotations

import numpy as np
import torch


class _GuidedGradient(torch.autograd.Function):
    """The identity on a ReLU's output whose backward keeps the positive gradients where it is positive."""

    @staticmethod
    def forward(ctx, value):
        ctx.save_for_backward(value)
        return value.clone()

    @staticmethod
    def backward(ctx, gradient):
        (value,) = ctx.saved_tensors
        return gradient.clamp(min=0) * (value > 0).to(gradient.dtype)


def guided_gradients(model: torch.nn.Module, images: torch.Tensor, categories: np.ndarray | None = None) -> np.ndarray:
    """Guided-backpropagation gradients ``(N, H, W, C)`` of each image's class score (its top class where
    ``categories`` is None) with respect to ``images`` ``(N, C, H, W)``.

    Examples
    --------
    >>> import torch
    >>> from imgexplain.backends.torch.guided import guided_gradients
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2, 2), torch.nn.ReLU(), torch.nn.Linear(2, 1))
    >>> with torch.no_grad():
    ...     _ = model[1].weight.copy_(torch.eye(2)); _ = model[1].bias.zero_()
    ...     _ = model[3].weight.copy_(torch.tensor([[1.0, -1.0]]))
    >>> guided_gradients(model, torch.tensor([[[[2.0, 3.0]]]]), [0])[0, 0].tolist()   # the -1 is not passed back
    [[1.0], [0.0]]
    """
    handles = [module.register_forward_hook(lambda module, args, output: _GuidedGradient.apply(output))
               for module in model.modules() if isinstance(module, torch.nn.ReLU)]
    inputs = images.detach().clone().requires_grad_(True)
    try:
        with torch.enable_grad():
            outputs = model(inputs)
            chosen = outputs.argmax(dim=1) if categories is None else torch.as_tensor(categories, device=outputs.device)
            score = outputs.gather(1, chosen.reshape(-1, 1).long()).sum()
            gradients = torch.autograd.grad(score, inputs)[0]
    finally:
        for handle in handles:
            handle.remove()
    return np.moveaxis(gradients.detach().float().cpu().numpy(), 1, -1)
