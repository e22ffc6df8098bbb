"""PyTorch: find the modules, run the model with forward hooks, return activations and gradients.

Hooks are removed in a ``finally`` block after every pass. The model runs without
autograd up to the first chosen module; the hook turns that module's output into a leaf
that requires a gradient and switches autograd on, so the backward pass goes from the
score to the chosen modules and no further. The model's train/eval mode is left as it is.
"""
from __future__ import annotations

import contextlib
import warnings
import weakref
from numbers import Integral
from typing import Any, Callable

import numpy as np
import torch

from imgexplain.model_outputs import select_output, token_grid

from . import CAM_COMPUTES
from .scores import INFERENCE_MODE as _INFERENCE_MODE
from .scores import fullgrad_terms, target_scores

# model -> {input shape: (name of the automatically chosen module, its token grid or None)}
_CHOSEN = weakref.WeakKeyDictionary()


def is_feature_map(shape: tuple | None) -> bool:
    """A 4-D ``(N, C, h, w)`` shape whose spatial size is not 1x1."""
    return shape is not None and len(shape) == 4 and (shape[2], shape[3]) != (1, 1)


def _shape(value):
    return tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__


# The grid of a 4-D output that a Linear or LayerNorm made: channels last, as Swin's stages.
CHANNELS_LAST = "channels last"


def _tokens_to_map(tensor, grid):
    """``(N, extra + side**2, C)`` tokens -> ``(N, C, side, side)``, the extra tokens dropped; a
    channels-last ``(N, h, w, C)`` output -> ``(N, C, h, w)``."""
    if grid == CHANNELS_LAST:
        return tensor.permute(0, 3, 1, 2)
    extra, side = grid
    patches = tensor[:, extra:, :]
    return patches.reshape(patches.shape[0], side, side, patches.shape[2]).permute(0, 3, 1, 2)


class CAMBackend:
    """Runs a ``torch.nn.Module`` for :class:`imgexplain.CAM` (channels first)."""

    channels_first = True
    computes = CAM_COMPUTES
    # A module does not declare how many classes it outputs: targets are checked after the forward pass.
    n_classes = None

    def __init__(self, model: torch.nn.Module, layers: list | None = None, output: Any = None,
                 reshape_transform: Callable | None = None):
        self.model = model
        self.output = output
        self.reshape_transform = reshape_transform
        self.layer_names = None
        self.layers = None
        self.grids = None
        # The explained output of the last pass (pytorch-grad-cam's ``cam.outputs``).
        self.outputs = None
        if layers is not None:
            found = [self._find_module(layer) for layer in layers]
            self.layer_names = [name for name, _ in found]
            self.layers = [module for _, module in found]
            self.grids = [None] * len(found)

    # --- the modules -----------------------------------------------------------------

    def _find_module(self, layer):
        named = [(name, module) for name, module in self.model.named_modules() if name]
        if isinstance(layer, str):
            found = dict(named).get(layer)
            if found is None:
                raise ValueError(f"model has no module named {layer!r}; names look like "
                                 f"{[name for name, _ in named[-5:]]}")
            return layer, found
        if isinstance(layer, Integral) and not isinstance(layer, bool):
            if not -len(named) <= layer < len(named):
                raise ValueError(f"layer index {layer} is out of range: the model has "
                                 f"{len(named)} modules (model.named_modules() without the model)")
            return named[layer]
        if isinstance(layer, torch.nn.Module):
            name = next((name for name, module in named if module is layer), None)
            if name is None:
                raise ValueError(f"layer {type(layer).__name__} is not a module of the model")
            return name, layer
        raise TypeError(f"layer must be None, a module name, an index or a torch.nn.Module; "
                        f"got {type(layer).__name__}")

    def _record_all(self, images, with_gradients=False):
        """Run one image, noting every module's tensor output in the order they finish, and how
        many times each module ran. With gradients, the input requires a gradient and every
        output keeps its own."""
        finished, runs, handles = [], {}, []

        def note(name, module):
            def hook(_, args, value):
                runs[name] = runs.get(name, 0) + 1
                if isinstance(value, torch.Tensor):
                    if with_gradients and value.requires_grad:
                        value.retain_grad()
                    finished.append((name, module, value))
            return hook

        try:
            for name, module in self.model.named_modules():
                if name:
                    handles.append(module.register_forward_hook(note(name, module)))
            with self._checked_channels():
                if with_gradients:
                    with torch.enable_grad():
                        outputs = select_output(self.model(images[:1].clone().requires_grad_(True)),
                                                self.output)
                        score = outputs.max() if outputs.ndim == 2 else outputs.sum()
                        score.backward()
                else:
                    with torch.no_grad():
                        self.model(images[:1])
        finally:
            for handle in handles:
                handle.remove()
        return [(name, module, value) for name, module, value in finished if runs[name] == 1]

    @staticmethod
    def _innermost(finished, value):
        """The name of the innermost module that produced ``value`` (containers pass it on)."""
        same = [(name, module) for name, module, other in finished if other is value]
        leaves = [name for name, module in same if next(module.children(), None) is None]
        return leaves[-1] if leaves else same[0][0]

    def _choose_module(self, images):
        """The last feature map when the model runs; a transformer's last token output that the
        score depends on through its patches when token outputs come after every feature map."""
        key = tuple(images.shape[1:])
        chosen = _CHOSEN.setdefault(self.model, {})
        if key not in chosen:
            finished = self._record_all(images)
            candidates = [value for _, _, value in finished
                          if is_feature_map(tuple(value.shape)) or token_grid(tuple(value.shape))]
            if not candidates:
                raise ValueError("the model has no module (run once per pass) whose output is a 4-D "
                                 "feature map (N, C, h, w) larger than 1x1 or transformer tokens; pass "
                                 "layer= explicitly, with reshape_transform= for other outputs")
            if candidates[-1].ndim == 4 or self.reshape_transform is not None:
                name = self._innermost(finished, candidates[-1])
                chosen[key] = (name, self._layout(self._find_module(name)[1], candidates[-1]))
            else:
                chosen[key] = self._choose_tokens(images)
        name, grid = chosen[key]
        self.layer_names, self.layers, self.grids = [name], [self._find_module(name)[1]], [grid]

    def _layout(self, module, value):
        """CHANNELS_LAST for a 4-D output of a Linear or a LayerNorm over the last axis (as in
        Swin's stages), else None."""
        last_axis = isinstance(module, torch.nn.Linear) or (
            isinstance(module, torch.nn.LayerNorm) and len(module.normalized_shape) == 1)
        if self.reshape_transform is None and value.ndim == 4 and last_axis:
            return CHANNELS_LAST
        return None

    def _choose_tokens(self, images):
        if torch.is_inference_mode_enabled():
            raise RuntimeError(_INFERENCE_MODE)
        finished = self._record_all(images, with_gradients=True)
        tokens = [(name, value) for name, _, value in finished if token_grid(tuple(value.shape))]
        widths = [value.shape[2] for _, value in tokens]
        width = max(set(widths), key=widths.count)
        for name, value in reversed(tokens):
            extra = token_grid(tuple(value.shape))[0]
            if value.shape[2] == width and value.grad is not None and bool(value.grad[:, extra:].any()):
                return self._innermost(finished, value), token_grid(tuple(value.shape))
        raise ValueError(f"the model's score depends on the patches of none of its token outputs "
                         f"({[name for name, _ in tokens][-5:]}); pass layer= and reshape_transform=")

    # --- inputs ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _checked_channels(self):
        """While inside, the first 2-D convolution to run checks its input's channels: the
        expected count is read from what the model does, not from the order modules were registered."""
        handles, seen = [], []

        def check(module, args):
            if seen:
                return
            seen.append(module)
            got = args[0].shape[1] if args and isinstance(args[0], torch.Tensor) and args[0].ndim == 4 else None
            if got is not None and got != module.in_channels:
                if args[0].shape[-1] == module.in_channels:
                    raise ValueError(f"images look channels last {tuple(args[0].shape)}; PyTorch models "
                                     f"take channels first (N, C, H, W): use "
                                     f"np.transpose(images, (0, 3, 1, 2))")
                raise ValueError(f"images have {got} channels; the model takes {module.in_channels}")

        try:
            for module in self.model.modules():
                if isinstance(module, torch.nn.Conv2d):
                    handles.append(module.register_forward_pre_hook(check))
            yield
        finally:
            for handle in handles:
                handle.remove()

    def prepare(self, images: Any) -> torch.Tensor:
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
        if images.is_floating_point() and not bool(torch.isfinite(images).all()):
            raise ValueError("images hold NaN or infinite values; a class activation map needs finite inputs")
        parameter = next(self.model.parameters(), None)
        if parameter is None:
            return images.float()
        return images.to(device=parameter.device, dtype=parameter.dtype)

    @staticmethod
    def spatial_size(images: torch.Tensor) -> tuple[int, int]:
        return tuple(images.shape[2:])

    @staticmethod
    def flip(images: torch.Tensor) -> torch.Tensor:
        return torch.flip(images, dims=(3,))

    def from_numpy(self, batch: np.ndarray) -> torch.Tensor:
        parameter = next(self.model.parameters(), None)
        tensor = torch.from_numpy(np.ascontiguousarray(batch))
        return tensor.float() if parameter is None else tensor.to(device=parameter.device, dtype=parameter.dtype)

    @staticmethod
    def to_numpy(images: torch.Tensor) -> np.ndarray:
        return images.detach().cpu().numpy()

    # --- passes ----------------------------------------------------------------------

    def _ensure_layers(self, images):
        if self.layers is None:
            self._choose_module(images)

    def _as_map(self, index, tensor):
        """A recorded output as a channels-last ``(N, h, w, C)`` array, through reshape_transform."""
        name = self.layer_names[index]
        if self.reshape_transform is not None:
            tensor = self.reshape_transform(tensor)
        elif self.grids[index] is not None:
            tensor = _tokens_to_map(tensor, self.grids[index])
        elif self._layout(self.layers[index], tensor) or (tensor.ndim == 3 and token_grid(tuple(tensor.shape))):
            self.grids[index] = self._layout(self.layers[index], tensor) or token_grid(tuple(tensor.shape))
            tensor = _tokens_to_map(tensor, self.grids[index])
        if not isinstance(tensor, torch.Tensor) or tensor.ndim != 4:
            through = " after reshape_transform" if self.reshape_transform is not None else ""
            raise ValueError(f"module {name!r} outputs {_shape(tensor)}{through}; a class activation map "
                             f"needs a 4-D feature map (N, C, h, w) (pass reshape_transform= "
                             f"to turn other outputs into one)")
        return np.moveaxis(tensor.detach().float().cpu().numpy(), 1, -1)

    def forward(self, images: torch.Tensor, targets: np.ndarray | list, gradients: bool = True,
                hessian: bool = False) -> tuple:
        """One pass over ``images``: per layer, activations ``(N, h, w, C)`` channels last and the
        gradients of each image's target score (None when ``gradients`` is False; with ``hessian``,
        a pair: the gradients and the Hessian-vector products ``d(G . A)/dA``); the chosen classes
        (-1 for callable targets) and the scores. ``targets`` is an int array (-1: top class) or a
        list of callables."""
        if gradients and torch.is_inference_mode_enabled():
            raise RuntimeError(_INFERENCE_MODE)
        if self.model.training:
            warnings.warn("the model is in training mode: dropout and batch statistics change its "
                          "output; call model.eval() first", stacklevel=4)
        self._ensure_layers(images)
        recorded = [[] for _ in self.layers]

        def hook_for(index):
            def hook(module, args, value):
                if not isinstance(value, torch.Tensor):
                    raise ValueError(f"module {self.layer_names[index]!r} outputs {_shape(value)}; a class "
                                     f"activation map needs a tensor")
                if not gradients:
                    # A copy, so that an in-place operation downstream cannot change it.
                    recorded[index].append(value.detach().clone())
                    return None
                if not (torch.is_grad_enabled() and value.requires_grad):
                    value = value.detach().requires_grad_(True)
                    torch.set_grad_enabled(True)
                recorded[index].append(value)
                # A copy goes on, so an in-place operation downstream leaves the recorded one intact.
                return value.clone()
            return hook

        handles = []
        try:
            for index, layer in enumerate(self.layers):
                handles.append(layer.register_forward_hook(hook_for(index)))
            with torch.no_grad(), self._checked_channels():
                outputs = self.model(images)
        finally:
            for handle in handles:
                handle.remove()
        for name, values in zip(self.layer_names, recorded):
            if len(values) != 1:
                raise ValueError(f"module {name!r} ran {len(values)} times in one forward pass; "
                                 f"choose a module that runs exactly once")
        outputs = select_output(outputs, self.output)
        self.outputs = outputs.detach()
        activations = [values[0] for values in recorded]
        with torch.enable_grad():
            scores, chosen = target_scores(outputs, targets)
            grads = None
            if gradients:
                if not scores.requires_grad:
                    raise ValueError(f"the model's output does not depend on module {self.layer_names[0]!r}")
                grads = torch.autograd.grad(scores.sum(), activations, allow_unused=True, create_graph=hessian)
                missing = [name for name, grad in zip(self.layer_names, grads) if grad is None]
                if missing:
                    raise ValueError(f"the model's output does not depend on module {missing[0]!r}")
                if hessian:
                    grads = [(self._as_map(index, grad), self._as_map(index, self._hessian_product(grad, value)))
                             for index, (grad, value) in enumerate(zip(grads, activations))]
                else:
                    grads = [self._as_map(index, grad) for index, grad in enumerate(grads)]
        maps = [self._as_map(index, value) for index, value in enumerate(activations)]
        return maps, grads, chosen, scores.detach().float().cpu().numpy()

    @staticmethod
    def _hessian_product(grad, activations):
        """``(d^2 y / dA^2) A``: zero where the score is linear in the activations."""
        if not grad.requires_grad:
            return torch.zeros_like(activations)
        product = torch.autograd.grad(grad, activations, grad_outputs=activations.detach(), allow_unused=True)[0]
        return torch.zeros_like(activations) if product is None else product

    def fullgrad_terms(self, images: torch.Tensor, targets: np.ndarray | list) -> tuple:
        """FullGrad's terms: see :func:`imgexplain.backends.torch.scores.fullgrad_terms`."""
        return fullgrad_terms(self, images, targets)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """The explained output of a numpy batch, as numpy."""
        with torch.no_grad(), self._checked_channels():
            outputs = select_output(self.model(self.from_numpy(batch)), self.output)
        return outputs.detach().float().cpu().numpy()

    def ablated_outputs(self, image: torch.Tensor, index: int, channels: np.ndarray) -> np.ndarray:
        """The explained output of ``image`` (a ``(1, C, H, W)`` tensor) once per channel in
        ``channels``, with that channel of layer ``index``'s output set to zero."""
        channels = np.asarray(channels)

        def ablate(module, args, value):
            axis = -1 if (self.reshape_transform is not None or self.grids[index] is not None) else 1
            keep = torch.ones((len(channels), value.shape[axis]), device=value.device, dtype=value.dtype)
            keep[np.arange(len(channels)), channels] = 0
            shape = [len(channels)] + [1] * (value.ndim - 1)
            shape[axis] = value.shape[axis]
            return value * keep.reshape(shape)

        handle = self.layers[index].register_forward_hook(ablate)
        try:
            with torch.no_grad():
                outputs = select_output(self.model(image.expand(len(channels), *image.shape[1:])), self.output)
        finally:
            handle.remove()
        return outputs.detach().float().cpu().numpy()
