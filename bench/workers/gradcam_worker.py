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


def methods(images_path, class_names, batches, repeats, maps_path, batch1_images, perturbation_images):
    """Each class of ``class_names`` on the CAM layer (the perturbation methods: on block 10's projection,
    and at batch 1 on ``perturbation_images`` images only), top class, maps at the input size: seconds per image at each
    batch and the maps of the images timed at batch 1, saved to ``maps_path`` (.npz, one array per class)."""
    import pytorch_grad_cam

    model, layer = _model()
    images = problems.efficientnet_input(np.load(images_path))
    timings, maps = {}, {}
    for name in class_names:
        slow = name in ("ScoreCAM", "AblationCAM")
        target = model.get_submodule(problems.EFFICIENTNET_BLOCK_10_PROJECTION) if slow else layer
        with getattr(pytorch_grad_cam, name)(model=model, target_layers=[target]) as cam:
            cam.batch_size = 32

            def explain(batch):
                return cam(input_tensor=batch, targets=None)

            count = perturbation_images if slow else batch1_images
            timings[name] = {str(b): problems.seconds_per_image(explain, images[:count] if b == 1 else images, b,
                                                                repeats)["best"]
                             for b in batches if b == 1 or not slow}
            maps[name] = np.concatenate([explain(images[i:i + 1]) for i in range(count)])
    np.savez(maps_path, **maps)
    return {"timings": timings}


def versions():
    from importlib.metadata import version

    import torch

    return {"version": version("grad-cam"), "torch": torch.__version__}


if __name__ == "__main__":
    serve({"gradcam": gradcam, "methods": methods, "version": versions})
