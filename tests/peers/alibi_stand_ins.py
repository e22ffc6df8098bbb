"""Stand-ins for what alibi's tests download or import from alibi itself, for the ported tests.

- ``mnist_data``: alibi_testing's MNIST is a download; here 28x28x1 images in [0, 1] made on the spot, ten
  classes of one bright 7x7 block each (its place says the class), on noise.
- ``models``: alibi_testing's pretrained MNIST CNNs ("mnist-cnn-tf2.2.0", "mnist-cnn-tf1.15.2.h5": Keras;
  "mnist-cnn-pt1.9.1.pt": PyTorch) are downloads; here small CNNs of the same input and output (28x28x1 in,
  ten softmax probabilities out), built inline with weights that classify ``mnist_data`` exactly.
- ``DEFAULT_META_ANCHOR``, ``DEFAULT_DATA_ANCHOR_IMG``: the keys of alibi's meta and data (alibi.api.defaults).
- ``AnchorImageSampler``: alibi's internal sampler class, which its test builds only to read the image's
  superpixels and ``n_covered_ex``; this stand-in holds those two, computed with imgexplain's segmentation.
"""
import functools

import numpy as np
import pytest

from imgexplain.segmentation import segment_image

DEFAULT_META_ANCHOR = {"name": None, "type": ["blackbox"], "explanations": ["local"], "params": {}, "version": None}
DEFAULT_DATA_ANCHOR_IMG = {"anchor": [], "segments": None, "precision": None, "coverage": None, "raw": None}

N_CLASSES, CELL = 10, 7  # class k is a bright 7x7 block in cell k of the image's 4x4 grid of cells


def block_digits(n, seed):
    """``n`` images of the ten block classes, with their labels."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % N_CLASSES
    images = rng.random((n, 28, 28, 1)).astype(np.float32) * 0.3
    for image, label in zip(images, labels):
        row, col = divmod(int(label), 4)
        image[CELL * row:CELL * (row + 1), CELL * col:CELL * (col + 1)] = 1.0
    return images, labels


def get_mnist_data():
    x_train, y_train = block_digits(100, seed=0)
    x_test, y_test = block_digits(20, seed=1)
    return {"X_train": x_train, "y_train": y_train, "X_test": x_test, "y_test": y_test}


# The CNN's weights, set by hand rather than trained: a 7x7 stride-7 convolution averages each cell, and the
# dense layer scores class k by the brightness of cell k.
CELL_KERNEL = np.full((CELL, CELL), 1 / CELL**2, np.float32)
DENSE = np.eye(16, N_CLASSES, dtype=np.float32) * 20


@functools.lru_cache(maxsize=None)
def load(name):
    return _torch_cnn() if name.endswith(".pt") else _keras_cnn()


def _torch_cnn():
    import torch

    conv = torch.nn.Conv2d(1, 1, CELL, stride=CELL, bias=False)
    dense = torch.nn.Linear(16, N_CLASSES)
    with torch.no_grad():
        conv.weight[:] = torch.as_tensor(CELL_KERNEL)
        dense.weight[:] = torch.as_tensor(DENSE.T)
        dense.bias.zero_()
    return torch.nn.Sequential(conv, torch.nn.Flatten(), dense, torch.nn.Softmax(dim=1)).eval()


def _keras_cnn():
    import keras

    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(1, CELL, strides=CELL, use_bias=False),
                              keras.layers.Flatten(), keras.layers.Dense(N_CLASSES, activation="softmax")])
    model.layers[0].set_weights([CELL_KERNEL[:, :, None, None]])
    model.layers[2].set_weights([DENSE, np.zeros(N_CLASSES, np.float32)])
    return model


@pytest.fixture
def models(request):
    return [load(name) for name in request.param]


@pytest.fixture(scope="module")
def mnist_data():
    return get_mnist_data()


@pytest.fixture(autouse=True)
def seeded_global_rng():
    """alibi's tests run with seed=None, so the search draws from numpy's global random state (in alibi and,
    since issue 20, in imgexplain): seeding it makes the ported tests reproducible."""
    state = np.random.get_state()
    np.random.seed(0)
    yield
    np.random.set_state(state)


class AnchorImageSampler:
    def __init__(self, predictor, segmentation_fn, custom_segmentation, image, images_background=None,
                 p_sample=0.5, n_covered_ex=10):
        self.n_covered_ex = n_covered_ex
        self.segments = segment_image(segmentation_fn, image if image.ndim == 3 else image[..., None],
                                      custom_segmentation)
