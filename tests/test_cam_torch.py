"""Class activation maps of PyTorch models, checked against maps computed step by step with
torch.autograd on small models built here, and against Keras with the same weights."""
import logging
import os
import warnings

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")
nn = torch.nn

from imgexplain import CAM, explain_prediction, show_prediction  # noqa: E402
from cam_textbook import textbook_map  # noqa: E402

GRADIENT_METHODS = ["gradcam", "gradcam++", "hirescam", "layercam"]


def _seeded(build, seed):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return build()


def _small_model(seed=0):
    # Flatten rather than pooling, so that the gradients vary across the map.
    return _seeded(lambda: nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ReLU(inplace=True), nn.Conv2d(4, 6, 3), nn.ReLU(inplace=True),
        nn.Flatten(), nn.Linear(6 * 12 * 12, 3), nn.Softmax(dim=1)), seed).eval()


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These models are tiny: one thread avoids contention when the machine is busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model():
    return _small_model()


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).random((4, 3, 16, 16), dtype=np.float32)


def _by_hand(features, head, images, targets, method):
    maps = []
    for image, target in zip(images, targets):
        activations = features(torch.as_tensor(image[None])).detach().requires_grad_(True)
        score = head(activations)[0, target]
        gradients = torch.autograd.grad(score, activations)[0]
        as_hwc = [np.moveaxis(t.detach().numpy()[0], 0, -1) for t in (activations, gradients)]
        maps.append(textbook_map(method, *as_hwc))
    return np.stack(maps)


def _no_hooks(model):
    return all(not module._forward_hooks for module in model.modules())


# --- known answers ----------------------------------------------------------------------


@pytest.mark.parametrize("method", GRADIENT_METHODS)
def test_gradient_methods_equal_the_step_by_step_map(model, images, method):
    targets = [0, 1, 2, 1]
    cam = CAM(model, method=method)
    maps = cam(images, targets=targets)
    assert cam.layer == "3" and maps.shape == (4, 12, 12)
    assert maps.max() == 1
    np.testing.assert_allclose(maps, _by_hand(model[:4], model[4:], images, targets, method), atol=1e-5)


def test_scorecam_equals_the_step_by_step_map(model, images):
    maps = CAM(model, layer="1", method="scorecam", batch_size=3)(images[:2], targets=[2, 0])
    with torch.no_grad():
        for n, target in enumerate([2, 0]):
            x = torch.as_tensor(images[n:n + 1])
            activations = model[:2](x)[0]
            scores = []
            for channel in activations:
                mask = torch.nn.functional.interpolate(channel[None, None], size=(16, 16), mode="bilinear")[0, 0]
                mask = (mask - mask.min()) / (mask.max() - mask.min())
                scores.append(float(model(x * mask)[0, target]))
            weights = np.exp(scores) / np.exp(scores).sum()
            raw = np.maximum(np.tensordot(weights, activations.numpy(), axes=1), 0)
            np.testing.assert_allclose(maps[n], raw / raw.max(), atol=1e-5)


def test_eigencam_is_the_first_principal_direction_of_the_activations(model, images):
    maps = CAM(model, method="eigencam")(images)
    with torch.no_grad():
        for n in range(len(images)):
            activations = model[:4](torch.as_tensor(images[n:n + 1]))[0].numpy()
            matrix = activations.reshape(activations.shape[0], -1).T
            matrix = matrix - matrix.mean(axis=0)      # centred over positions
            direction = np.linalg.svd(matrix, full_matrices=False)[2][0]
            projection = matrix @ (direction if direction.sum() >= 0 else -direction)
            raw = np.maximum(projection.reshape(activations.shape[1:]), 0)
            np.testing.assert_allclose(maps[n], raw / raw.max(), atol=1e-5)


def test_same_weights_give_the_same_maps_in_keras_and_pytorch(images):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    keras = pytest.importorskip("keras")
    torch_model = _seeded(lambda: nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 6, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(6, 3), nn.Softmax(dim=1)), 3).eval()
    keras_model = keras.Sequential([
        keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.Conv2D(6, 3, activation="relu", name="features"), keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(3, activation="softmax")])
    for keras_index, torch_index in [(0, 0), (1, 2), (3, 6)]:
        keras_layer, torch_layer = keras_model.layers[keras_index], torch_model[torch_index]
        kernel = torch_layer.weight.detach().numpy()
        kernel = kernel.transpose(2, 3, 1, 0) if kernel.ndim == 4 else kernel.T
        keras_layer.set_weights([kernel, torch_layer.bias.detach().numpy()])
    channels_last = images.transpose(0, 2, 3, 1)
    np.testing.assert_allclose(keras_model(channels_last).numpy(), torch_model(torch.as_tensor(images)).detach(),
                               atol=1e-6)
    for method in GRADIENT_METHODS + ["scorecam", "eigencam"]:
        torch_cam = CAM(torch_model, method=method)
        keras_cam = CAM(keras_model, method=method)
        assert torch_cam(images[:1]).shape == (1, 12, 12) and torch_cam.layer == "3"   # not the 1x1 pool
        assert keras_cam.layer == "features"
        np.testing.assert_allclose(torch_cam(images, targets=[0, 1, 2, 0]),
                                   keras_cam(channels_last, targets=[0, 1, 2, 0]), atol=1e-4)
    # The rest of the family, and pytorch-grad-cam's options, agree too.
    from imgexplain.targets import ClassScore

    for method, options, call in [("xgradcam", {}, {}), ("gradcam-elementwise", {}, {}), ("ablationcam", {}, {}),
                                  ("gradcam", {"size": "input"}, {"aug_smooth": True}),
                                  ("layercam", {}, {"eigen_smooth": True, "targets": ClassScore(2)})]:
        torch_maps = CAM(torch_model, method=method, **options)(images, **{"targets": 1, **call})
        keras_maps = CAM(keras_model, method=method, **options)(channels_last, **{"targets": 1, **call})
        np.testing.assert_allclose(torch_maps, keras_maps, atol=1e-4, err_msg=method)
    both = [CAM(torch_model, layer=["1", "3"]), CAM(keras_model, layer=[keras_model.layers[0], "features"])]
    np.testing.assert_allclose(both[0](images), both[1](channels_last), atol=1e-4)
    assert both[0](images).shape == (4, 14, 14)


def test_a_model_whose_class_depends_on_one_corner_is_explained_by_that_corner():
    rng = np.random.default_rng(1)
    images = rng.random((512, 1, 16, 16), dtype=np.float32) * 0.5
    labels = rng.integers(0, 2, 512)
    images[labels == 1, :, :5, :5] += 1.0
    net = _seeded(lambda: nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2)), 4)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
    x, y = torch.as_tensor(images), torch.as_tensor(labels)
    for _ in range(3):
        for start in range(0, 512, 32):
            optimizer.zero_grad()
            nn.functional.cross_entropy(net(x[start:start + 32]), y[start:start + 32]).backward()
            optimizer.step()
    model = nn.Sequential(net, nn.Softmax(dim=1)).eval()
    with torch.no_grad():
        assert (model(x).argmax(1) == y).float().mean() > 0.95

    positives = images[labels == 1][:8]
    for method in GRADIENT_METHODS:
        cam = CAM(model, method=method)
        maps = cam(positives, targets=1)
        assert cam.layer == "0.3"
        peaks = [np.unravel_index(np.argmax(m), m.shape) for m in maps]
        assert all(row < 8 and column < 8 for row, column in peaks), (method, peaks)
        assert maps[:, :8, :8].mean() > 2 * maps[:, 8:, 8:].mean()


# --- modules -------------------------------------------------------------------------------


class Nested(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 5, 3), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(5, 3)

    def forward(self, x):
        return torch.softmax(self.classifier(self.pool(self.features(x)).flatten(1)), dim=1)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        return torch.relu(self.conv(x) + x)


class WithBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3)
        self.block = Block()
        self.classifier = nn.Linear(4, 3)

    def forward(self, x):
        return torch.softmax(self.classifier(self.block(self.stem(x)).mean(dim=(2, 3))), dim=1)


def test_automatic_choice_in_nested_modules(images):
    nested = _seeded(Nested, 5).eval()
    cam = CAM(nested)
    maps = cam(images, targets=1)
    assert cam.layer == "features.3"

    def head(activations):
        return torch.softmax(nested.classifier(nested.pool(activations).flatten(1)), dim=1)

    np.testing.assert_allclose(maps, _by_hand(nested.features, head, images, [1] * 4, "gradcam"), atol=1e-5)


def test_a_block_that_computes_its_own_output_is_chosen_as_a_whole(images):
    model = _seeded(WithBlock, 6).eval()
    cam = CAM(model)
    maps = cam(images, targets=2)
    assert cam.layer == "block"

    def head(activations):
        return torch.softmax(model.classifier(activations.mean(dim=(2, 3))), dim=1)

    np.testing.assert_allclose(maps, _by_hand(lambda x: model.block(model.stem(x)), head, images, [2] * 4,
                                              "gradcam"), atol=1e-5)


def test_layer_by_name_index_and_module(model, images):
    by_name = CAM(model, layer="1")
    assert by_name(images).shape == (4, 14, 14)
    np.testing.assert_allclose(CAM(model, layer=1)(images), by_name(images))
    by_module = CAM(model, layer=model[3])
    assert by_module.layer == "3"
    np.testing.assert_allclose(by_module(images), CAM(model)(images))


def test_bad_layers(model, images):
    with pytest.raises(ValueError, match="no module named"):
        CAM(model, layer="nope")
    with pytest.raises(ValueError, match="out of range"):
        CAM(model, layer=50)
    with pytest.raises(ValueError, match="not a module of the model"):
        CAM(model, layer=nn.Conv2d(3, 4, 3))
    with pytest.raises(TypeError, match="layer must be"):
        CAM(model, layer=2.0)
    for not_a_feature_map in ("4", "5", model[6]):
        with pytest.raises(ValueError, match="feature map"):
            CAM(model, layer=not_a_feature_map)(images)
    assert _no_hooks(model)


def test_a_module_run_twice_is_refused(images):
    relu = nn.ReLU()
    model = _seeded(lambda: nn.Sequential(nn.Conv2d(3, 4, 3), relu, nn.Conv2d(4, 4, 3), relu,
                                          nn.Flatten(), nn.Linear(4 * 12 * 12, 2)), 7).eval()
    with pytest.raises(ValueError, match="ran 2 times"):
        CAM(model, layer=relu)(images)
    assert CAM(model, layer="2")(images).shape == (4, 12, 12)
    assert _no_hooks(model)


def test_models_with_several_outputs_need_output(images):
    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.first, self.second = nn.Linear(4, 3), nn.Linear(4, 2)

        def forward(self, x):
            pooled = torch.relu(self.conv(x)).mean(dim=(2, 3))
            return torch.softmax(self.first(pooled), 1), torch.softmax(self.second(pooled), 1)

    model = _seeded(TwoHeads, 8).eval()
    with pytest.raises(ValueError, match="2 outputs; choose one with output="):
        CAM(model)(images)
    cam = CAM(model, output=1)
    assert cam.layer is None   # found when the model first runs
    maps = cam(images, targets=1)
    assert cam.layer == "conv"

    def head(activations):
        return torch.softmax(model.second(torch.relu(activations).mean(dim=(2, 3))), 1)

    np.testing.assert_allclose(maps, _by_hand(model.conv, head, images, [1] * 4, "gradcam"), atol=1e-5)


# --- targets, batches, inputs, state --------------------------------------------------------


def test_targets_default_to_the_top_class_and_batches_equal_single_calls(model, images):
    cam = CAM(model)
    result = cam.compute(images)
    with torch.no_grad():
        probabilities = model(torch.as_tensor(images)).numpy()
    np.testing.assert_array_equal(result.targets, probabilities.argmax(axis=1))
    np.testing.assert_allclose(result.scores, probabilities.max(axis=1), rtol=1e-6)
    singles = np.concatenate([cam(images[i:i + 1]) for i in range(len(images))])
    np.testing.assert_allclose(result.maps, singles, atol=1e-6)
    np.testing.assert_allclose(cam(torch.as_tensor(images)), result.maps, atol=1e-6)
    np.testing.assert_allclose(cam(images.astype(np.float64)), result.maps, atol=1e-6)
    assert not np.allclose(cam(images, targets=(result.targets + 1) % 3), result.maps)


def test_model_state_hooks_and_autograd_are_left_as_they_were(model, images):
    cam = CAM(model)
    cam(images)
    assert not model.training and _no_hooks(model)
    assert all(parameter.grad is None for parameter in model.parameters())
    with torch.no_grad():
        cam(images)
        assert not torch.is_grad_enabled()
    assert torch.is_grad_enabled()
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        cam(images, targets=3)
    assert _no_hooks(model) and torch.is_grad_enabled()
    for _ in range(3):
        explain_prediction(model, images[:1])
        CAM(model, method="scorecam", batch_size=2)(images[:1])
    assert _no_hooks(model)


def test_a_model_in_training_mode_is_used_as_it_is_with_a_warning(images):
    model = _small_model(seed=9).train()
    with pytest.warns(UserWarning, match="training mode"):
        CAM(model)(images)
    assert model.training
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        CAM(model)(images)


def test_explain_prediction_on_a_channels_first_tensor(model, images, caplog):
    doc = torch.as_tensor(images[:1])
    with caplog.at_level(logging.INFO, logger="imgexplain"):
        explanation = explain_prediction(model, doc)
    top = int(model(doc).argmax())
    assert f"Taking top prediction: {top}" in caplog.text
    assert explanation.image.size == (16, 16) and explanation.heatmap.shape == (12, 12)
    scaled = images[0].transpose(1, 2, 0) - images[0].min()
    expected = np.round(scaled * 255 / scaled.max()).astype(np.uint8)
    np.testing.assert_array_equal(np.asarray(explanation.image), expected)
    assert explanation.targets[0].target == top and explanation.layer == "3"
    np.testing.assert_allclose(explanation.heatmap, CAM(model)(images[:1])[0])
    picture = show_prediction(model, doc, targets=[0], method="gradcam++", alpha_limit=0.9)
    assert isinstance(picture, Image.Image) and picture.size == (16, 16)
    with pytest.raises(ValueError, match="one image"):
        explain_prediction(model, images[:2])


def test_explain_prediction_has_eli5s_fields_and_an_assignable_image(model, images):
    from imgexplain import TargetExplanation, format_as_image

    explanation = explain_prediction(model, torch.as_tensor(images[:1]), targets=[1])
    assert explanation.error == "" and explanation.targets[0].proba is None
    assert explanation.targets[0].score == pytest.approx(float(model(torch.as_tensor(images[:1]))[0, 1].detach()))
    before = format_as_image(explanation)
    explanation.image = explanation.image.convert("RGBA")
    assert explanation.image.mode == "RGBA"
    assert np.array_equal(np.asarray(format_as_image(explanation)), np.asarray(before))
    explanation.image = Image.new("L", (32, 32), 200)  # another picture: the map is laid over it
    assert format_as_image(explanation).size == (32, 32)
    explanation.image = Image.new("P", (4, 4))
    assert explanation.image.mode == "RGBA"
    with pytest.raises(TypeError, match="PIL image"):
        explanation.image = np.zeros((4, 4, 3), np.uint8)
    assert TargetExplanation(-1, heatmap=np.zeros((7, 7))).score is None  # eli5's keywords


def test_explain_prediction_returns_eli5s_error_explanation_when_asked(model, images):
    from imgexplain import format_as_image

    with pytest.raises(TypeError, match="keras.Model or a torch.nn.Module"):
        explain_prediction(object(), images[:1])
    with pytest.raises(ValueError):
        explain_prediction(model, images[:1, :, :, :2].reshape(1, 3, -1))
    for bad_model, doc in [(object(), images[:1]), (model, np.zeros((0,), np.float32)),
                           (nn.Sequential(nn.Linear(3, 2)).eval(), np.zeros((1, 3), np.float32))]:
        explanation = explain_prediction(bad_model, doc, errors="return")
        assert "not supported" in explanation.error and type(bad_model).__name__ in explanation.error
        assert explanation.targets == [] and explanation.image is None and explanation.heatmap is None
        with pytest.raises(TypeError, match="PIL image"):
            format_as_image(explanation)
    assert explain_prediction(model, images[:1], errors="return").error == ""
    with pytest.raises(ValueError, match="errors must be one of"):
        explain_prediction(model, images[:1], errors="ignore")
    with pytest.raises(TypeError, match="targets"):  # the arguments' own errors are raised whatever errors says
        explain_prediction(model, images[:1], targets="cat", errors="return")

