"""A tiny torch classifier of 16x16 RGB images (one convolution, three classes), as the command line's
explainer takes it: shared by tests/test_stream.py and tests/test_explainers.py."""
import numpy as np

from imgexplain.classes import numbered_classes, probabilities
from imgexplain.models import Classifier

SIZE = 16


def tiny_classifier(predictor_calls=None, cam_forward=None) -> Classifier:
    """The same weights every time (seed 0); ``predictor_calls`` collects the batch size of each predictor call;
    ``cam_forward`` is the classifier's forward pass for CAM's masked passes."""
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3)).eval()

    def preprocess(images):
        return torch.as_tensor(np.ascontiguousarray(images.transpose(0, 3, 1, 2) / 255.0), dtype=torch.float32)

    def predictor(images):
        if predictor_calls is not None:
            predictor_calls.append(len(images))
        with torch.no_grad():
            return probabilities(model(preprocess(images)).numpy())

    return Classifier(name="tiny", framework="torch", model=model, input_size=(SIZE, SIZE), preprocess=preprocess,
                      predictor=predictor, top_classes=numbered_classes, cam_layer="1", cam_forward=cam_forward)
