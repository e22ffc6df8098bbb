"""pytorch-grad-cam side of bench/cam_parity.py (runs in bench/.venvs/gradcam).

torchvision is bench/torchvision_standin (on this worker's PYTHONPATH), whose names raise if used.
"""
import numpy as np

from bench import problems, vit_model
from bench.workers.protocol import serve


def vit(images_path, weights_path, maps_path, repeats):
    from pytorch_grad_cam import GradCAM

    model = vit_model.load(weights_path)
    images = problems.efficientnet_input(np.load(images_path))
    with GradCAM(model=model, target_layers=[model.blocks[-1].norm1],
                 reshape_transform=vit_model.reshape_transform) as cam:
        def explain(batch):
            return cam(input_tensor=batch, targets=None)

        timing = problems.seconds_per_image(explain, images, 1, repeats)
        np.save(maps_path, explain(images))
    return {"timing": timing}


def efficientnet(images_path, maps_path, repeats):
    import torch
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model, layer = problems.efficientnet_softmax()
    images = problems.efficientnet_input(np.load(images_path))
    layers = [model.get_submodule(problems.EFFICIENTNET_BLOCK_10), model.get_submodule(layer)]
    with GradCAM(model=model, target_layers=layers) as cam:
        def explain(batch):
            # The image's own top class in every augmentation, as imgexplain explains it.
            with torch.no_grad():
                top = model(batch).argmax(dim=1).tolist()
            return cam(input_tensor=batch, targets=[ClassifierOutputTarget(c) for c in top], aug_smooth=True)

        timing = problems.seconds_per_image(explain, images, 1, repeats)
        np.save(maps_path, np.concatenate([explain(images[i:i + 1]) for i in range(len(images))]))
    return {"timing": timing}


def versions():
    from importlib.metadata import version

    import torch

    return {"version": version("grad-cam"), "torch": torch.__version__}


if __name__ == "__main__":
    serve({"vit": vit, "efficientnet": efficientnet, "version": versions})
