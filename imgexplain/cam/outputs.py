"""Choosing the output to explain and checking targets against it, for models of any framework."""
from __future__ import annotations


def select_output(outputs, output):
    """The one output tensor to explain, from a model with one or several outputs."""
    several = isinstance(outputs, (list, tuple, dict))
    if output is None:
        if several and len(outputs) != 1:
            keys = list(outputs) if isinstance(outputs, dict) else list(range(len(outputs)))
            raise ValueError(f"the model has {len(outputs)} outputs; choose one with output= "
                             f"(one of {keys})")
        if several:
            return next(iter(outputs.values())) if isinstance(outputs, dict) else outputs[0]
        return outputs
    if not several:
        raise ValueError(f"output={output!r} was given but the model has a single output")
    try:
        return outputs[output]
    except (KeyError, IndexError, TypeError):
        keys = list(outputs) if isinstance(outputs, dict) else list(range(len(outputs)))
        raise ValueError(f"output must be one of {keys}; got {output!r}") from None


def check_target_range(targets, n_classes):
    """Raise if any of the integer array ``targets`` is not a class of an ``n_classes`` output."""
    bad = targets[(targets < 0) | (targets >= n_classes)]
    if bad.size:
        raise ValueError(f"targets must lie in [0, {n_classes}) for a model with {n_classes} "
                         f"outputs; got {bad.tolist()}")
