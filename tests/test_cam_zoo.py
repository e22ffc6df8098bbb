"""The zoo's EfficientNet-Lite0 explained in PyTorch and in its Keras port: the same output
(the logits) gives the same maps."""
import os

import numpy as np
import pytest

pytest.importorskip("torch")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
pytest.importorskip("keras")

from imgexplain import datasets, zoo  # noqa: E402
from imgexplain import CAM  # noqa: E402
from imgexplain.zoo import keras_port  # noqa: E402


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IMGEXPLAIN_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield zoo.efficientnet_lite0(framework="torch"), zoo.efficientnet_lite0(framework="keras")


def test_torch_and_keras_explain_the_same_logits_with_the_same_maps(models):
    torch_model, keras_model = models
    pixels = np.stack([image.astype(np.float32) for image in
                       datasets.load_samples(names=["chelsea", "coffee"]).values()])
    torch_cam = CAM(torch_model.model, layer=torch_model.feature_layer)
    keras_cam = CAM(keras_model.model, layer=keras_model.feature_layer, output=keras_port.CAM_OUTPUT)
    torch_result = torch_cam.compute(torch_model.preprocess(pixels))
    keras_result = keras_cam.compute(keras_model.preprocess(pixels))
    np.testing.assert_array_equal(torch_result.targets, keras_result.targets)
    np.testing.assert_allclose(keras_result.scores, torch_result.scores, rtol=1e-3)
    assert np.abs(keras_result.maps - torch_result.maps).max() < 0.01
    # The softmax output, the Keras model's own, gives other maps: the two outputs are not interchangeable.
    probabilities = CAM(keras_model.model, layer=keras_model.feature_layer)(keras_model.preprocess(pixels))
    assert np.abs(probabilities - torch_result.maps).max() > 0.05
