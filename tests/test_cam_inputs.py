"""Inputs that once broke class activation maps (issue 9): NaN images, models whose convolutions
are registered out of order, huge targets, modules that run twice, inference mode, TensorFlow's
wrapping of errors, and one-output sigmoid models; PyTorch and Keras."""
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from imgexplain.cam import methods  # noqa: E402
from imgexplain import CAM, explain_prediction  # noqa: E402


def _seeded(build, seed):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return build()


class Counting(nn.Module):
    """A small CNN that counts its forward passes."""

    def __init__(self, outputs=3):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 6, 3), nn.ReLU())
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(6 * 12 * 12, outputs))
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.head(self.body(x))


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).random((2, 3, 16, 16), dtype=np.float32)


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return pytest.importorskip("keras")


def _keras_model(keras, outputs=3, activation="softmax"):
    init = keras.initializers.GlorotUniform(seed=4)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", kernel_initializer=init, name="conv")(inputs)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(outputs, activation=activation, kernel_initializer=init)(x))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_pixels_are_refused_before_the_forward_pass(images, bad, keras):
    model = _seeded(Counting, 0).eval()
    broken = images.copy()
    broken[1, 2, 3, 4] = bad
    for call in (lambda: CAM(model)(broken), lambda: explain_prediction(model, broken[1:]),
                 lambda: CAM(model, method="scorecam")(torch.as_tensor(broken))):
        with pytest.raises(ValueError, match="NaN or infinite"):
            call()
    assert model.calls == 0
    keras_model = _keras_model(keras)
    channels_last = broken.transpose(0, 2, 3, 1)
    for call in (lambda: CAM(keras_model)(channels_last), lambda: explain_prediction(keras_model, channels_last[1:]),
                 lambda: CAM(keras_model)(keras.ops.convert_to_tensor(channels_last))):
        with pytest.raises(ValueError, match="NaN or infinite"):
            call()


def test_the_channel_count_comes_from_the_convolution_that_runs_first(images):
    class RegisteredOutOfOrder(nn.Module):
        def __init__(self):
            super().__init__()
            self.later = nn.Conv2d(4, 6, 3)      # registered first, runs second
            self.first = nn.Conv2d(3, 4, 3)
            self.head = nn.Linear(6, 2)

        def forward(self, x):
            return self.head(self.later(torch.relu(self.first(x))).mean(dim=(2, 3)))

    model = _seeded(RegisteredOutOfOrder, 1).eval()
    assert CAM(model)(images).shape == (2, 12, 12)
    with pytest.raises(ValueError, match="images have 4 channels; the model takes 3"):
        CAM(model)(np.zeros((2, 4, 16, 16), dtype=np.float32))
    with pytest.raises(ValueError, match="channels last"):
        CAM(model)(np.zeros((2, 16, 16, 3), dtype=np.float32))


@pytest.mark.parametrize("target", [2**31, 2**32 + 1, 2**70])
def test_targets_beyond_int32_are_refused_not_wrapped(images, target, keras):
    model = _seeded(Counting, 0).eval()
    with pytest.raises(ValueError, match=r"2\*\*31"):
        CAM(model)(images, targets=target)
    with pytest.raises(ValueError, match=r"2\*\*31"):
        CAM(model)(images, targets=[0, target])
    assert model.calls == 0
    with pytest.raises(ValueError, match=r"\[0, 3\)|2\*\*31"):
        CAM(_keras_model(keras))(images.transpose(0, 2, 3, 1), targets=target)


def test_layer_none_skips_a_module_that_runs_twice(images):
    shared = nn.ReLU()
    model = _seeded(lambda: nn.Sequential(nn.Conv2d(3, 4, 3), shared, nn.Conv2d(4, 4, 3), shared,
                                          nn.Flatten(), nn.Linear(4 * 12 * 12, 2)), 7).eval()
    cam = CAM(model)
    np.testing.assert_allclose(cam(images), CAM(model, layer="2")(images))
    assert cam.layer == "2"


def test_inference_mode_is_named(images):
    model = _seeded(Counting, 0).eval()
    with torch.inference_mode():
        with pytest.raises(RuntimeError, match="inference_mode"):
            CAM(model)(images)
        with pytest.raises(RuntimeError, match="inference_mode"):
            explain_prediction(model, images[:1])


def test_keras_errors_arrive_as_one_clear_message(keras):
    inputs = keras.Input((16, 16, 3))
    shared = keras.layers.Activation("relu", name="shared")
    x = shared(keras.layers.Conv2D(3, 3, padding="same", name="conv")(inputs))
    x = shared(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(x)))
    with pytest.raises(ValueError) as raised:
        CAM(model, layer="shared")(np.zeros((1, 16, 16, 3), dtype=np.float32))
    message = str(raised.value)
    assert "ran 2 times" in message and "in user code" not in message and len(message.splitlines()) == 1


def _torch_sigmoid():
    return _seeded(lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(),
                                         nn.Linear(4 * 14 * 14, 1), nn.Sigmoid()), 5).eval()


def test_a_one_output_sigmoid_model_explains_class_1_and_its_complement(images, keras):
    model = _torch_sigmoid()
    with torch.no_grad():
        probabilities = model(torch.as_tensor(images))[:, 0].numpy()
    cam = CAM(model, layer="1")
    result = cam.compute(images)
    np.testing.assert_array_equal(result.targets, (probabilities >= 0.5).astype(int))
    np.testing.assert_allclose(result.scores, np.where(probabilities >= 0.5, probabilities, 1 - probabilities),
                               rtol=1e-6)
    for target in (0, 1):
        maps = cam(images, targets=target)
        for n in range(2):
            activations = model[:2](torch.as_tensor(images[n:n + 1])).detach().requires_grad_(True)
            probability = model[2:](activations)[0, 0]
            score = probability if target == 1 else 1 - probability
            gradients = torch.autograd.grad(score, activations)[0]
            weighted = (gradients.mean(dim=(2, 3))[0, :, None, None] * activations[0]).sum(dim=0)
            np.testing.assert_allclose(maps[n], methods.normalize_maps(weighted.detach().numpy()[None])[0],
                                       atol=1e-5)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        cam(images, targets=2)
    keras_model = _keras_model(keras, outputs=1, activation="sigmoid")
    keras_result = CAM(keras_model).compute(images.transpose(0, 2, 3, 1))
    keras_probabilities = keras_model(images.transpose(0, 2, 3, 1)).numpy()[:, 0]
    np.testing.assert_array_equal(keras_result.targets, (keras_probabilities >= 0.5).astype(int))
    np.testing.assert_allclose(keras_result.scores, np.maximum(keras_probabilities, 1 - keras_probabilities),
                               rtol=1e-5)
    complement = CAM(keras_model)(images.transpose(0, 2, 3, 1), targets=0)
    assert complement.shape == (2, 14, 14)
