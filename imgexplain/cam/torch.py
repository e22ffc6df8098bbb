"""PyTorch: find the module, run the model once with a forward hook, return activations and gradients.

The hook is removed in a ``finally`` block after every pass. The model runs without
autograd up to the chosen module; the hook turns the module's output into a leaf that
requires a gradient and switches autograd on, so the backward pass goes from the score to
that module and no further. The model's train/eval mode is left as it is.
"""
from __future__ import annotations

import warnings
import weakref
from numbers import Integral

import numpy as np
import torch
import torch.nn.functional as F

from .outputs import check_target_range, select_output

# model -> {input shape: name of the automatically chosen module}
_CHOSEN = weakref.WeakKeyDictionary()


def is_feature_map(shape) -> bool:
    """A 4-D ``(N, C, h, w)`` shape whose spatial size is not 1x1."""
    return shape is not None and len(shape) == 4 and (shape[2], shape[3]) != (1, 1)


def _select_output(outputs, output):
    """The one (N, n_classes) output tensor to explain, from a model with one or several outputs."""
    outputs = select_output(outputs, output)
    if not isinstance(outputs, torch.Tensor) or outputs.ndim != 2:
        shape = tuple(outputs.shape) if isinstance(outputs, torch.Tensor) else type(outputs).__name__
        raise ValueError(f"the model's output must be (N, n_classes) scores; got {shape}")
    return outputs


class TorchBackend:
    """Runs a ``torch.nn.Module`` for :class:`imgexplain.cam.api.CAM` (channels first)."""

    channels_first = True

    def __init__(self, model, layer=None, output=None):
        self.model = model
        self.output = output
        self.layer_name = None
        self.layer = None if layer is None else self._find_module(layer)

    # --- the module ------------------------------------------------------------------

    def _find_module(self, layer):
        named = [(name, module) for name, module in self.model.named_modules() if name]
        if isinstance(layer, str):
            found = dict(named).get(layer)
            if found is None:
                raise ValueError(f"model has no module named {layer!r}; names look like "
                                 f"{[name for name, _ in named[-5:]]}")
            name = layer
        elif isinstance(layer, Integral) and not isinstance(layer, bool):
            if not -len(named) <= layer < len(named):
                raise ValueError(f"layer index {layer} is out of range: the model has "
                                 f"{len(named)} modules (model.named_modules() without the model)")
            name, found = named[layer]
        elif isinstance(layer, torch.nn.Module):
            name = next((name for name, module in named if module is layer), None)
            if name is None:
                raise ValueError(f"layer {type(layer).__name__} is not a module of the model")
            found = layer
        else:
            raise TypeError(f"layer must be None, a module name, an index or a torch.nn.Module; "
                            f"got {type(layer).__name__}")
        self.layer_name = name
        return found

    def _choose_module(self, images):
        """Run one image, noting every module's output in the order they finish, and take the
        last feature map. Modules that return that very tensor (a container passing on its last
        child's output, an in-place activation) are one choice: the last leaf among them."""
        key = tuple(images.shape[1:])
        chosen = _CHOSEN.setdefault(self.model, {})
        if key not in chosen:
            finished = []
            handles = []

            def note(name, module):
                def hook(_, args, value):
                    if isinstance(value, torch.Tensor):
                        finished.append((name, module, value))
                return hook

            try:
                for name, module in self.model.named_modules():
                    if name:
                        handles.append(module.register_forward_hook(note(name, module)))
                with torch.no_grad():
                    self.model(images[:1])
            finally:
                for handle in handles:
                    handle.remove()
            last = next((value for _, _, value in reversed(finished)
                         if is_feature_map(tuple(value.shape))), None)
            if last is None:
                raise ValueError("the model has no module whose output is a 4-D feature map "
                                 "(N, C, h, w) larger than 1x1; pass layer= explicitly")
            same = [(name, module) for name, module, value in finished if value is last]
            leaves = [name for name, module in same if next(module.children(), None) is None]
            chosen[key] = leaves[-1] if leaves else same[0][0]
        return self._find_module(chosen[key])

    # --- inputs ----------------------------------------------------------------------

    def _input_channels(self):
        for module in self.model.modules():
            if isinstance(module, torch.nn.Conv2d):
                return module.in_channels
        return None

    def prepare(self, images):
        """Check a batch ``(N, C, H, W)`` and make it a tensor on the model's device."""
        if not isinstance(images, torch.Tensor):
            array = np.asarray(images)
            if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
                raise TypeError(f"images must be numeric; got dtype {array.dtype}")
            images = torch.from_numpy(np.ascontiguousarray(array))
        shape = tuple(images.shape)
        if images.ndim != 4:
            hint = " (for one image use images[None])" if images.ndim == 3 else ""
            raise ValueError(f"images must be a 4-D batch (N, C, H, W) for a PyTorch model; "
                             f"got shape {shape}{hint}")
        if shape[0] == 0:
            raise ValueError("images is an empty batch")
        channels = self._input_channels()
        if channels is not None and shape[1] != channels:
            if shape[-1] == channels:
                raise ValueError(f"images look channels last {shape}; PyTorch models take channels "
                                 f"first (N, C, H, W): use np.transpose(images, (0, 3, 1, 2))")
            raise ValueError(f"images have {shape[1]} channels; the model takes {channels}")
        parameter = next(self.model.parameters(), None)
        if parameter is None:
            return images.float()
        return images.to(device=parameter.device, dtype=parameter.dtype)

    # A module does not declare how many classes it outputs: targets are checked after the forward pass.
    n_classes = None

    # --- passes ----------------------------------------------------------------------

    def forward(self, images, targets, gradients=True):
        """One pass over ``images``: activations (N, h, w, C) channels last, the gradients of each
        image's target score (None when ``gradients`` is False), the chosen targets and their
        scores. ``targets`` holds -1 where the top prediction is to be taken."""
        if self.model.training:
            warnings.warn("the model is in training mode: dropout and batch statistics change its "
                          "output; call model.eval() first", stacklevel=3)
        if self.layer is None:
            self.layer = self._choose_module(images)
        recorded = []

        def hook(module, args, value):
            if not isinstance(value, torch.Tensor) or not is_feature_map(tuple(value.shape)):
                shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
                raise ValueError(f"module {self.layer_name!r} outputs {shape}; a class activation map "
                                 f"needs a 4-D feature map (N, C, h, w) larger than 1x1")
            if not gradients:
                # A copy, so that an in-place operation downstream cannot change it.
                recorded.append(value.detach().clone())
                return None
            leaf = value.detach().requires_grad_(True)
            recorded.append(leaf)
            torch.set_grad_enabled(True)
            # A copy goes on, so an in-place operation downstream leaves the leaf intact.
            return leaf.clone()

        handle = self.layer.register_forward_hook(hook)
        try:
            with torch.no_grad():
                outputs = self.model(images)
        finally:
            handle.remove()
        if len(recorded) != 1:
            raise ValueError(f"module {self.layer_name!r} ran {len(recorded)} times in one forward "
                             f"pass; choose a module that runs exactly once")
        outputs = _select_output(outputs, self.output)
        targets = torch.as_tensor(targets, device=outputs.device)
        chosen = torch.where(targets < 0, outputs.argmax(dim=1), targets)
        check_target_range(chosen.cpu().numpy(), outputs.shape[1])
        activations = recorded[0]
        with torch.enable_grad():
            scores = outputs.gather(1, chosen[:, None])[:, 0]
            grads = None
            if gradients:
                if not scores.requires_grad:
                    raise ValueError(f"the model's output does not depend on module {self.layer_name!r}")
                grads = torch.autograd.grad(scores.sum(), activations)[0]
                grads = _channels_last(grads)
        return (_channels_last(activations), grads, chosen.cpu().numpy(),
                scores.detach().float().cpu().numpy())

    def masked_scores(self, images, activations, targets, batch_size):
        """Target score of each image multiplied by each upsampled, [0, 1]-scaled channel."""
        n_images, _, _, n_channels = activations.shape
        scores = np.empty((n_images, n_channels), dtype=np.float32)
        size = tuple(images.shape[2:])
        with torch.no_grad():
            for n in range(n_images):
                channels = torch.from_numpy(np.ascontiguousarray(activations[n].transpose(2, 0, 1)))
                channels = channels.to(device=images.device, dtype=images.dtype)
                for start in range(0, n_channels, batch_size):
                    masks = F.interpolate(channels[None, start:start + batch_size], size=size,
                                          mode="bilinear", align_corners=False)[0]
                    low = masks.amin(dim=(1, 2), keepdim=True)
                    span = masks.amax(dim=(1, 2), keepdim=True) - low
                    masks = torch.where(span > 0, (masks - low) / torch.where(span > 0, span, 1), 0)
                    outputs = _select_output(self.model(images[n:n + 1] * masks[:, None]), self.output)
                    scores[n, start:start + len(masks)] = outputs[:, int(targets[n])].float().cpu().numpy()
        return scores


def _channels_last(tensor):
    return np.moveaxis(tensor.detach().float().cpu().numpy(), 1, -1)
