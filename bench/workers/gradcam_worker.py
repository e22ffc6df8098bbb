"""pytorch-grad-cam side of the PyTorch Grad-CAM speed benchmark (runs in bench/.venvs/gradcam).

torchvision is bench/torchvision_standin (on this worker's PYTHONPATH), whose names raise if used.
"""
import numpy as np

from bench import problems
from bench.workers.protocol import serve

_MODEL = []


def _model():
    """The model and its CAM layer (a module), built once."""
    if not _MODEL:
        model, layer = problems.efficientnet_softmax()
        _MODEL.extend([model, model.get_submodule(layer)])
    return _MODEL


def gradcam(images_path, batches, repeats, maps_path, batch1_images=8):
    from pytorch_grad_cam import GradCAM

    model, layer = _model()
    images = problems.efficientnet_input(np.load(images_path))
    with GradCAM(model=model, target_layers=[layer]) as cam:
        def explain(batch):
            return cam(input_tensor=batch, targets=None)

        timings = {str(b): problems.seconds_per_image(explain, images[:batch1_images] if b == 1 else images, b,
                                                      repeats) for b in batches}
        np.save(maps_path, explain(images))
    return {"timings": timings}


def versions():
    from importlib.metadata import version

    import torch

    return {"version": version("grad-cam"), "torch": torch.__version__}


if __name__ == "__main__":
    serve({"gradcam": gradcam, "version": versions})
