"""The command line's per-image explainer passes the classifier's CAM settings on to CAM."""
import numpy as np
import pytest

from tiny_classifier import SIZE, tiny_classifier

from imgexplain.explainers import ImageExplainer
from imgexplain.models import Classifier

torch = pytest.importorskip("torch")


def _image():
    return np.random.default_rng(0).uniform(0, 255, (SIZE, SIZE, 3)).astype(np.float32)


def test_masked_passes_go_to_the_classifier_s_forward():
    calls = []
    plain = tiny_classifier()

    def forward(inputs):
        calls.append(len(inputs))
        with torch.no_grad():
            return plain.model(torch.as_tensor(inputs)).numpy()

    with_forward = ImageExplainer(lambda: tiny_classifier(cam_forward=forward), ["scorecam"]).explain(_image())
    without = ImageExplainer(lambda: plain, ["scorecam"]).explain(_image())
    assert sum(calls) == 4  # one masked image per channel of the layer
    np.testing.assert_allclose(with_forward["scorecam"], without["scorecam"], atol=1e-5)


def test_fullgrad_runs_over_every_layer_whatever_the_classifier_s_cam_layer():
    row = ImageExplainer(tiny_classifier, ["fullgrad"]).explain(_image())
    heatmap = np.asarray(row["fullgrad"])
    assert heatmap.ndim == 2 and np.isfinite(heatmap).all() and heatmap.max() == pytest.approx(1.0)


@pytest.mark.parametrize("framework, output, forward", [("torch", None, True), ("keras", "logits", False)])
def test_the_builtin_model_explains_logits_in_both_frameworks(framework, output, forward, monkeypatch):
    from imgexplain import models, zoo

    loaded = zoo.PretrainedModel(object(), name="lite", framework=framework, feature_layer="top")
    monkeypatch.setattr(zoo, "efficientnet_lite0", lambda framework, device=None: loaded)
    classifier = models.load_builtin(framework)
    assert classifier is loaded and isinstance(classifier, Classifier)  # one model type, nothing copied
    assert (classifier.name, classifier.cam_layer, classifier.feature_layer) == ("efficientnet-lite0", "top", "top")
    assert classifier.cam_output == output
    # The ONNX forward returns PyTorch's logits; the Keras port's last layer is a softmax.
    assert (classifier.cam_forward == loaded.forward) is forward
    assert classifier.predictor == loaded.predictor and classifier.preprocess == loaded.preprocess
