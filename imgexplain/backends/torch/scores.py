"""PyTorch: the scores a CAM explains (class indices or target callables) and FullGrad's terms."""
from __future__ import annotations

import numpy as np
import torch

from imgexplain.model_outputs import call_target, check_target_range, select_output
from imgexplain.outputs import SIGMOID_THRESHOLD, probability_mask

INFERENCE_MODE = ("class activation maps need gradients, but CAM was called inside torch.inference_mode(), "
                  "which forbids them; call it outside inference_mode (torch.no_grad() is fine)")


def _class_scores(outputs, targets):
    """Scores of the chosen classes and the classes; ``targets`` holds -1 for the top class."""
    if outputs.ndim != 2:
        raise ValueError(f"the model's output must be (N, n_classes) scores for class targets; got "
                         f"{tuple(outputs.shape)}; use a callable target (imgexplain.targets) otherwise")
    targets = torch.as_tensor(targets, device=outputs.device)
    if outputs.shape[1] == 1:
        column = outputs[:, 0]
        probability = bool(probability_mask(column).all())
        top = (column > (SIGMOID_THRESHOLD if probability else 0)).long()  # the rule of imgexplain.outputs
        chosen = torch.where(targets < 0, top, targets)
        check_target_range(chosen.cpu().numpy(), 1)
        return torch.where(chosen == 1, column, 1 - column if probability else -column), chosen
    chosen = torch.where(targets < 0, outputs.argmax(dim=1), targets)
    check_target_range(chosen.cpu().numpy(), outputs.shape[1])
    return outputs.gather(1, chosen[:, None])[:, 0], chosen


def target_scores(outputs: torch.Tensor, targets: np.ndarray | list) -> tuple[torch.Tensor, np.ndarray]:
    """``(scores, chosen classes)``: ``targets`` is an int array or a list of callables."""
    if isinstance(targets, np.ndarray):
        scores, chosen = _class_scores(outputs, targets)
        return scores, chosen.cpu().numpy().astype(np.int64)
    scores = []
    for target, row in zip(targets, outputs):
        score = call_target(target, row)
        scores.append(torch.as_tensor(score, device=outputs.device).reshape(()))
    return torch.stack(scores), np.full(len(scores), -1, dtype=np.int64)


def fullgrad_terms(backend, images: torch.Tensor, targets: np.ndarray | list) -> tuple:
    """FullGrad's terms: ``dy/dx * x`` (N, H, W, C), and ``dy/dz * b`` (N, h, w, K) for the output
    z of every Conv2d with a bias and every BatchNorm2d in eval mode (bias ``beta - mean * gamma /
    sqrt(var + eps)``) that runs once (their names become ``layer_names``); the classes and the scores."""
    if torch.is_inference_mode_enabled():
        raise RuntimeError(INFERENCE_MODE)
    biased = []
    for name, module in backend.model.named_modules():
        if isinstance(module, torch.nn.Conv2d) and module.bias is not None:
            biased.append((name, module, module.bias.detach()))
        elif isinstance(module, torch.nn.BatchNorm2d) and not module.training and module.track_running_stats:
            scale = module.weight.detach() if module.affine else torch.ones_like(module.running_var)
            shift = module.bias.detach() if module.affine else torch.zeros_like(module.running_mean)
            biased.append((name, module, shift - module.running_mean * scale
                           / torch.sqrt(module.running_var + module.eps)))
    recorded = {name: [] for name, _, _ in biased}

    def record_for(name):
        def hook(module, args, value):
            recorded[name].append(value)
            # A copy goes on, so an in-place operation downstream leaves the recorded one intact.
            return value.clone()
        return hook

    handles = []
    inputs = images.detach().clone().requires_grad_(True)
    try:
        for name, module, _ in biased:
            handles.append(module.register_forward_hook(record_for(name)))
        with torch.enable_grad(), backend._checked_channels():
            outputs = select_output(backend.model(inputs), backend.output)
    finally:
        for handle in handles:
            handle.remove()
    backend.outputs = outputs.detach()
    used = [(name, bias) for name, _, bias in biased if len(recorded[name]) == 1]
    with torch.enable_grad():
        scores, chosen = target_scores(outputs, targets)
        grads = torch.autograd.grad(scores.sum(), [inputs] + [recorded[name][0] for name, _ in used],
                                    allow_unused=True)
    input_term = np.moveaxis((grads[0] * inputs).detach().float().cpu().numpy(), 1, -1)
    bias_terms = [np.moveaxis((grad * bias[None, :, None, None]).detach().float().cpu().numpy(), 1, -1)
                  for grad, (_, bias) in zip(grads[1:], used) if grad is not None]
    backend.layer_names = [name for grad, (name, _) in zip(grads[1:], used) if grad is not None]
    return input_term, bias_terms, chosen, scores.detach().float().cpu().numpy()
