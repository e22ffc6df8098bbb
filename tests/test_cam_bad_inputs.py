"""Images and targets that CAM refuses, with the same error on Keras and PyTorch, before any map is made."""
import os

import numpy as np
import pytest

from imgexplain import CAM

N_IMAGES, SIDE, N_CLASSES = 4, 16, 3


def _keras_model():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    keras = pytest.importorskip("keras")
    init = keras.initializers.GlorotUniform(seed=1)
    inputs = keras.Input((SIDE, SIDE, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", kernel_initializer=init)(inputs)
    x = keras.layers.Conv2D(6, 3, activation="relu", kernel_initializer=init)(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(N_CLASSES, activation="softmax", kernel_initializer=init)(x))


def _torch_model():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 6, 3), nn.ReLU(), nn.Flatten(),
                             nn.Linear(6 * (SIDE - 4) ** 2, N_CLASSES), nn.Softmax(dim=1)).eval()


class Framework:
    """A small 3-class model of one framework and arrays in its layout."""

    def __init__(self, name):
        self.name = name
        self.channels_first = name == "torch"
        self.model = _torch_model() if self.channels_first else _keras_model()
        self.other_layout = "channels last" if self.channels_first else "channels first"

    def zeros(self, shape, layout=None):
        """Zeros of the channels-last ``shape`` ((H, W, C) or (N, H, W, C)) in the framework's layout,
        or in the other framework's layout when ``layout`` is "other"."""
        channels_first = self.channels_first != (layout == "other")
        array = np.zeros(shape, dtype=np.float32)
        return np.moveaxis(array, -1, -3) if channels_first else array

    def images(self):
        return self.zeros((N_IMAGES, SIDE, SIDE, 3)) + 0.5


@pytest.fixture(scope="module", params=["keras", "torch"])
def framework(request):
    return Framework(request.param)


# (what is wrong, the images in channels-last terms, error, message); "other" puts them in the other layout.
BAD_IMAGES = [
    ("no batch axis", lambda fw: fw.zeros((SIDE, SIDE, 3)), ValueError, r"images\[None\]"),
    ("the other layout", lambda fw: fw.zeros((2, SIDE, SIDE, 3), "other"), ValueError, "{other_layout}"),
    ("4 channels", lambda fw: fw.zeros((2, SIDE, SIDE, 4)), ValueError, "4 channels"),
    ("empty batch", lambda fw: fw.zeros((0, SIDE, SIDE, 3)), ValueError, "empty"),
    ("strings", lambda fw: np.array([[["a"]]]), TypeError, "numeric"),
]


@pytest.mark.parametrize("bad, error, match", [case[1:] for case in BAD_IMAGES], ids=[case[0] for case in BAD_IMAGES])
def test_bad_images(framework, bad, error, match):
    with pytest.raises(error, match=match.format(other_layout=framework.other_layout)) as raised:
        CAM(framework.model)(bad(framework))
    assert type(raised.value) is error


def test_keras_checks_the_height_against_the_model_input():
    keras = Framework("keras")
    with pytest.raises(ValueError, match="height"):
        CAM(keras.model)(keras.zeros((2, SIDE + 4, SIDE, 3)))


@pytest.mark.parametrize("targets, error, match", [
    (3, ValueError, r"\[0, 3\)"),
    ([0, 1, 2, 5], ValueError, r"\[0, 3\)"),
    ([0, 1, 2, 7], ValueError, r"\[0, 3\)"),
    (-1, ValueError, ">= 0"),
    ([-1, 0, 0, 0], ValueError, ">= 0"),
    ([0, 1], ValueError, "one int or callable per image"),
    ([0.0, 1.0, 2.0, 1.0], TypeError, "ints"),
    (1.0, TypeError, "targets must be"),
    (np.array([True, False, True, True]), TypeError, "ints"),
    (True, TypeError, "targets must be"),
    ("1", TypeError, "targets must be"),
])
def test_bad_targets(framework, targets, error, match):
    with pytest.raises(error, match=match) as raised:
        CAM(framework.model)(framework.images(), targets=targets)
    assert type(raised.value) is error


def test_a_target_that_raises_is_named_in_the_error(framework):
    def broken_target(row):
        raise KeyError("no such class")

    with pytest.raises(ValueError, match="target .*broken_target raised KeyError .*no such class") as raised:
        CAM(framework.model)(framework.images(), targets=broken_target)
    assert isinstance(raised.value.__cause__, KeyError)
