"""pytorch-grad-cam side of the PyTorch Grad-CAM benchmark (runs in bench/.venvs/gradcam).

torchvision is replaced by bench/torchvision_standin, whose names raise if used.
"""
import sys

from protocol import BENCH, serve

sys.path.insert(0, str(BENCH / "torchvision_standin"))

import numpy as np  # noqa: E402

import problems  # noqa: E402

_MODEL = []


def _model():
    if not _MODEL:
        _MODEL.append(problems.efficientnet_softmax())
    return _MODEL[0]


def gradcam(images_path, batches, repeats, maps_path, batch1_images=8):
    from pytorch_grad_cam import GradCAM

    model = _model()
    images = problems.efficientnet_input(np.load(images_path))
    with GradCAM(model=model, target_layers=[model[0]._head_activation]) as cam:
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
