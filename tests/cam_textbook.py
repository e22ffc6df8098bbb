"""CAM maps computed as the papers define them, for the known-answer tests of both frameworks."""
import numpy as np


def textbook_map(method, activations, gradients):
    """One image's map from its (h, w, K) activations and gradients, as the papers define it."""
    if method == "gradcam":
        raw = sum(gradients[..., k].mean() * activations[..., k] for k in range(activations.shape[-1]))
    elif method == "hirescam":
        raw = (gradients * activations).sum(axis=-1)
    elif method == "layercam":
        raw = (np.maximum(gradients, 0) * activations).sum(axis=-1)
    else:  # gradcam++
        with np.errstate(divide="ignore", invalid="ignore"):
            alphas = gradients**2 / (2 * gradients**2 + activations.sum(axis=(0, 1)) * gradients**3)
        alphas = np.nan_to_num(alphas, nan=0.0, posinf=0.0, neginf=0.0)
        weights = (alphas * np.maximum(gradients, 0)).sum(axis=(0, 1))
        raw = (weights * activations).sum(axis=-1)
    raw = np.maximum(raw, 0)
    return raw / raw.max() if raw.max() > 0 else raw
