"""Class activation maps of Keras 3 models, checked against maps computed step by step with
tf.GradientTape on small models built here."""
import logging
import os

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from imgexplain import datasets  # noqa: E402
from imgexplain.backends.keras import cam as cam_keras  # noqa: E402
from imgexplain import CAM, explain_prediction, image_from_path, show_prediction  # noqa: E402
from cam_textbook import textbook_map  # noqa: E402
from imgexplain.render import format_as_image  # noqa: E402

GRADIENT_METHODS = ["gradcam", "gradcam++", "hirescam", "layercam"]


def _init(seed):
    return keras.initializers.GlorotUniform(seed=seed)


def _small_model(seed=0, name="small"):
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", kernel_initializer=_init(seed + 1), name="conv1")(inputs)
    x = keras.layers.Conv2D(6, 3, kernel_initializer=_init(seed + 2), name="conv2")(x)
    x = keras.layers.Activation("relu", name="relu2")(x)
    # Flatten rather than pooling, so that the gradients vary across the map.
    x = keras.layers.Flatten(name="flat")(x)
    outputs = keras.layers.Dense(3, activation="softmax", kernel_initializer=_init(seed + 3), name="dense")(x)
    return keras.Model(inputs, outputs, name=name)


@pytest.fixture(scope="module")
def model():
    return _small_model()


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).random((4, 16, 16, 3), dtype=np.float32)


def _by_hand(run, images, targets, method):
    """``run(x)`` returns (activations, scores) under the tape; one image at a time."""
    maps = []
    for image, target in zip(images, targets):
        with tf.GradientTape() as tape:
            activations, scores = run(tf.constant(image[None]), tape)
            score = scores[0, target]
        gradients = tape.gradient(score, activations).numpy()[0]
        maps.append(textbook_map(method, activations.numpy()[0], gradients))
    return np.stack(maps)


def _functional_run(model, layer_name):
    tapped = keras.Model(model.inputs[0], [model.get_layer(layer_name).output, model.output])

    def run(x, tape):
        return tapped(x)

    return run


# --- known answers ----------------------------------------------------------------------


@pytest.mark.parametrize("method", GRADIENT_METHODS)
def test_gradient_methods_equal_the_step_by_step_map(model, images, method):
    targets = [0, 1, 2, 1]
    cam = CAM(model, method=method)
    maps = cam(images, targets=targets)
    assert cam.layer == "relu2" and maps.shape == (4, 12, 12)
    expected = _by_hand(_functional_run(model, "relu2"), images, targets, method)
    np.testing.assert_allclose(maps, expected, atol=1e-5)


def test_scorecam_equals_the_step_by_step_map(model, images):
    tapped = keras.Model(model.inputs[0], model.get_layer("conv1").output)
    maps = CAM(model, layer="conv1", method="scorecam", batch_size=3)(images[:2], targets=[2, 0])
    for n, target in enumerate([2, 0]):
        activations = tapped(images[n:n + 1]).numpy()[0]
        scores = []
        for k in range(activations.shape[-1]):
            mask = tf.image.resize(activations[None, :, :, k:k + 1], (16, 16), method="bilinear").numpy()[0]
            mask = (mask - mask.min()) / (mask.max() - mask.min()) if mask.max() > mask.min() else 0 * mask
            scores.append(model(images[n:n + 1] * mask[None]).numpy()[0, target])
        weights = np.exp(scores) / np.exp(scores).sum()
        raw = np.maximum((weights * activations).sum(axis=-1), 0)
        np.testing.assert_allclose(maps[n], raw / raw.max(), atol=1e-5)


def test_eigencam_is_the_first_principal_direction_of_the_activations(model, images):
    tapped = keras.Model(model.inputs[0], model.get_layer("relu2").output)
    maps = CAM(model, method="eigencam")(images)
    for n in range(len(images)):
        activations = tapped(images[n:n + 1]).numpy()[0]
        matrix = activations.reshape(-1, activations.shape[-1])
        matrix = matrix - matrix.mean(axis=0)      # centred over positions
        direction = np.linalg.svd(matrix, full_matrices=False)[2][0]
        projection = matrix @ (direction if direction.sum() >= 0 else -direction)
        raw = np.maximum(projection.reshape(activations.shape[:2]), 0)
        np.testing.assert_allclose(maps[n], raw / raw.max(), atol=1e-5)


def test_a_model_whose_class_depends_on_one_corner_is_explained_by_that_corner():
    rng = np.random.default_rng(1)
    images = rng.random((512, 16, 16, 1), dtype=np.float32) * 0.5
    labels = rng.integers(0, 2, 512)
    images[labels == 1, :5, :5] += 1.0
    inputs = keras.Input((16, 16, 1))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", kernel_initializer=_init(10))(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", kernel_initializer=_init(11),
                            name="features")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(2, activation="softmax", kernel_initializer=_init(12))(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(images, labels, epochs=6, batch_size=32, shuffle=False, verbose=0)
    assert history.history["accuracy"][-1] > 0.95

    positives = images[labels == 1][:8]
    for method in GRADIENT_METHODS:
        maps = CAM(model, method=method)(positives, targets=1)
        peaks = [np.unravel_index(np.argmax(m), m.shape) for m in maps]
        assert all(row < 8 and column < 8 for row, column in peaks), (method, peaks)
        assert maps[:, :8, :8].mean() > 2 * maps[:, 8:, 8:].mean()


# --- layers and model kinds -----------------------------------------------------------------


def test_layer_by_name_index_and_object(model, images):
    by_name = CAM(model, layer="conv1")
    assert by_name.layer == "conv1" and by_name(images).shape == (4, 14, 14)
    by_index = CAM(model, layer=1)
    assert by_index.layer == "conv1"
    np.testing.assert_allclose(by_index(images), by_name(images))
    assert CAM(model, layer=model.get_layer("conv2")).layer == "conv2"
    assert CAM(model, layer=-3).layer == "relu2"


@pytest.mark.parametrize("layer, error, match", [
    ("dense", ValueError, "feature map"),
    ("flat", ValueError, "feature map"),
    ("nope", ValueError, "not in model"),
    (0, ValueError, "input"),
    (99, ValueError, "out of range"),
    (1.5, TypeError, "layer must be"),
])
def test_bad_layers(model, layer, error, match):
    with pytest.raises(error, match=match):
        CAM(model, layer=layer)


def test_a_layer_of_another_model_is_refused(model):
    with pytest.raises(ValueError, match="not a layer of model"):
        CAM(model, layer=_small_model(seed=5).get_layer("conv1"))


def _nested_model():
    base = keras.Sequential([keras.Input((16, 16, 3)),
                             keras.layers.Conv2D(4, 3, activation="relu", kernel_initializer=_init(21), name="b1"),
                             keras.layers.Conv2D(5, 3, activation="relu", kernel_initializer=_init(22), name="b2")],
                            name="base")
    head = [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, activation="softmax",
                                                                      kernel_initializer=_init(23))]
    return base, head, keras.Sequential([keras.Input((16, 16, 3)), base] + head)


def test_nested_model_layers_are_found_and_explained(images):
    base, head, model = _nested_model()
    cam = CAM(model)
    assert cam.layer == "b2"

    def run(x, tape):
        activations = base(x)
        tape.watch(activations)
        scores = activations
        for layer in head:
            scores = layer(scores)
        return activations, scores

    np.testing.assert_allclose(cam(images, targets=2), _by_hand(run, images, [2] * 4, "gradcam"), atol=1e-5)
    assert CAM(model, layer="b1").layer == "b1"
    assert CAM(model, layer=base.get_layer("b1"))(images).shape == (4, 14, 14)
    # The nested model itself, whose output is its last layer's.
    np.testing.assert_allclose(CAM(model, layer=base)(images, targets=2), cam(images, targets=2))


def test_mobilenet_v2_inside_a_sequential_as_in_transfer_learning():
    base = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(64, 64, 3), alpha=0.35)
    model = keras.Sequential([keras.Input((64, 64, 3)), base, keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(5, activation="softmax")])
    images = np.random.default_rng(2).uniform(-1, 1, (2, 64, 64, 3)).astype(np.float32)
    explanation = explain_prediction(model, images[:1])
    assert explanation.layer == "out_relu" and explanation.heatmap.shape == (2, 2)

    def run(x, tape):
        activations = base(x, training=False)
        tape.watch(activations)
        return activations, model.layers[2](model.layers[1](activations))

    expected = _by_hand(run, images, [3, 3], "gradcam")
    np.testing.assert_allclose(CAM(model)(images, targets=3), expected, atol=1e-5)


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.first = keras.layers.Conv2D(4, 3, activation="relu", kernel_initializer=_init(31))
        self.second = keras.layers.Conv2D(6, 3, activation="relu", kernel_initializer=_init(32))
        self.pool = keras.layers.GlobalAveragePooling2D()
        self.classify = keras.layers.Dense(3, activation="softmax", kernel_initializer=_init(33))

    def call(self, x):
        return self.classify(self.pool(self.second(self.first(x))))


def test_subclassed_model(images):
    model = Subclassed()
    cam = CAM(model, method="hirescam")
    maps = cam(images, targets=[1, 1, 0, 2])
    assert cam.layer == model.second.name

    def run(x, tape):
        activations = model.second(model.first(x))
        tape.watch(activations)
        return activations, model.classify(model.pool(activations))

    np.testing.assert_allclose(maps, _by_hand(run, images, [1, 1, 0, 2], "hirescam"), atol=1e-5)
    with pytest.raises(ValueError, match="feature map"):
        CAM(model, layer=model.classify)(images)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        cam(images, targets=3)
    assert all("call" not in layer.__dict__ for layer in model.layers)


def test_models_with_several_outputs_need_output(images):
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", kernel_initializer=_init(41), name="conv")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(x)
    first = keras.layers.Dense(3, activation="softmax", kernel_initializer=_init(42))(pooled)
    second = keras.layers.Dense(2, activation="softmax", kernel_initializer=_init(43))(pooled)
    model = keras.Model(inputs, [first, second])
    with pytest.raises(ValueError, match="2 outputs; choose one with output="):
        CAM(model)(images)
    with pytest.raises(ValueError, match="output must be one of"):
        CAM(model, output=5)(images)
    expected = CAM(keras.Model(inputs, second))(images, targets=1)
    np.testing.assert_allclose(CAM(model, output=1)(images, targets=1), expected, atol=1e-6)


def test_a_saturated_softmax_gives_zero_maps_not_nan():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, kernel_initializer="ones", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(2, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.layers[-1].set_weights([np.array([[100.0, -100.0]] * 4, dtype=np.float32), np.zeros(2, np.float32)])
    result = CAM(model).compute(np.ones((1, 8, 8, 3), dtype=np.float32))
    assert result.scores[0] == 1.0 and result.targets[0] == 0
    assert not np.isnan(result.maps).any() and np.all(result.maps == 0)


# --- targets, batches, inputs -----------------------------------------------------------------


def test_targets_default_to_the_top_class_and_batches_equal_single_calls(model, images):
    cam = CAM(model)
    result = cam.compute(images)
    probabilities = model(images).numpy()
    np.testing.assert_array_equal(result.targets, probabilities.argmax(axis=1))
    np.testing.assert_allclose(result.scores, probabilities.max(axis=1), rtol=1e-6)
    singles = np.concatenate([cam(images[i:i + 1]) for i in range(len(images))])
    np.testing.assert_allclose(result.maps, singles, atol=1e-6)
    other = cam(images, targets=(result.targets + 1) % 3)
    assert not np.allclose(other, result.maps)
    np.testing.assert_allclose(cam(tf.constant(images)), result.maps, atol=1e-6)
    np.testing.assert_allclose(cam(tf.constant(images, dtype=tf.float64)), result.maps, atol=1e-6)


def test_weights_changed_after_a_first_call_are_used(images):
    model = _small_model(seed=7)
    cam = CAM(model)
    before = cam(images, targets=0)
    dense = model.get_layer("dense")
    kernel, bias = dense.get_weights()
    dense.set_weights([-kernel, bias])
    after = cam(images, targets=0)
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, _by_hand(_functional_run(model, "relu2"), images, [0] * 4, "gradcam"),
                               atol=1e-5)


def test_bad_arguments(model):
    with pytest.raises(ValueError, match="method must be one of"):
        CAM(model, method="gradcam+++")
    with pytest.raises(ValueError, match="batch_size"):
        CAM(model, method="scorecam", batch_size=0)
    with pytest.raises(TypeError, match="keras.Model"):
        CAM(lambda x: x)


def test_nothing_accumulates_when_called_in_a_loop(model, images):
    cam = CAM(model)
    cam(images)
    layers = list(cam_keras.all_layers(model))
    nodes = [len(layer._inbound_nodes) for layer in layers]
    traced = len(cam_keras._TRACED[model])
    for _ in range(3):
        cam(images[:2])
        explain_prediction(model, images[:1])
        CAM(model)(images, targets=1)
    assert [len(layer._inbound_nodes) for layer in layers] == nodes
    assert len(cam_keras._TRACED[model]) == traced
    assert all("call" not in layer.__dict__ for layer in layers)


# --- the eli5 API (seed 003) -------------------------------------------------------------------


def test_explain_prediction_takes_the_top_prediction_and_logs_it(model, images, caplog):
    top = int(model(images[:1]).numpy().argmax())
    with caplog.at_level(logging.INFO, logger="imgexplain"):
        explanation = explain_prediction(model, images[:1])
    assert f"Taking top prediction: {top}" in caplog.text
    assert isinstance(explanation.image, Image.Image) and explanation.image.size == (16, 16)
    assert explanation.heatmap.shape == (12, 12)
    assert 0 <= explanation.heatmap.min() and explanation.heatmap.max() == 1
    assert explanation.targets[0].target == top
    assert explanation.targets[0].score == pytest.approx(float(model(images[:1]).numpy().max()))
    np.testing.assert_array_equal(explanation.targets[0].heatmap, explanation.heatmap)
    assert explanation.method == "gradcam" and explanation.layer == "relu2"
    np.testing.assert_allclose(explanation.heatmap, CAM(model)(images[:1])[0])


def test_explain_prediction_of_chosen_targets_layers_and_methods(model, images, caplog):
    with caplog.at_level(logging.INFO, logger="imgexplain"):
        explanation = explain_prediction(model, images[:1], targets=[2], layer="conv1", method="layercam")
    assert "Taking top prediction" not in caplog.text
    assert explanation.targets[0].target == 2 and explanation.layer == "conv1"
    assert explanation.method == "layercam" and explanation.heatmap.shape == (14, 14)
    both = explain_prediction(model, images[:1], targets=[2, 0])
    assert [t.target for t in both.targets] == [2, 0]
    np.testing.assert_allclose(both.targets[1].heatmap, CAM(model)(images[:1], targets=0)[0], atol=1e-6)


def test_seed_003_notebook_idioms(model, images):
    doc = images[:1]
    picture = show_prediction(model, doc)
    assert isinstance(picture, Image.Image) and picture.size == (16, 16)
    expl = explain_prediction(model, doc, targets=[1])
    resized = expl.heatmap.resize((expl.image.height, expl.image.width))
    assert isinstance(resized, Image.Image) and resized.size == (16, 16)
    overlay = format_as_image(expl, alpha_limit=255., colormap=__import__("matplotlib").cm.cividis)
    assert overlay.size == (16, 16)
    for layer in ["conv1", "conv2", "relu2"]:
        assert show_prediction(model, doc, layer=layer).size == (16, 16)
    # Section 4: another model explains the same image differently.
    other = explain_prediction(_small_model(seed=50), doc)
    assert not np.allclose(other.heatmap, explain_prediction(model, doc).heatmap)


def test_explain_prediction_with_a_given_picture_and_bad_arguments(model, images):
    picture = Image.new("RGB", (40, 30), (10, 20, 30))
    explanation = explain_prediction(model, images[:1], image=picture)
    assert explanation.image.size == (40, 30)
    assert format_as_image(explanation).size == (40, 30)
    with pytest.raises(ValueError, match="one image"):
        explain_prediction(model, images[:2])
    with pytest.raises(ValueError, match="non-empty list"):
        explain_prediction(model, images[:1], targets=[])
    with pytest.raises(TypeError, match="targets must be None or a non-empty list"):
        explain_prediction(model, images[:1], targets="1")
    with pytest.raises(TypeError, match="unexpected keyword"):
        show_prediction(model, images[:1], alpha=0.5)
    with pytest.raises(ValueError, match="uint8"):
        explain_prediction(model, images[:1], image=np.zeros((4, 4, 3)))


def test_image_from_path(tmp_path):
    array = np.random.default_rng(3).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    path = tmp_path / "picture.png"
    Image.fromarray(array).save(path)
    doc = image_from_path(path, image_shape=(16, 20))
    assert doc.shape == (1, 16, 20, 3) and doc.dtype == np.float32
    np.testing.assert_array_equal(doc[0], datasets.resize_image(array, (16, 20)))  # bilinear, as everywhere
    np.testing.assert_array_equal(image_from_path(str(path), image_shape=None)[0], array)
    with pytest.raises(ValueError, match="image_shape"):
        image_from_path(path, image_shape=(16,))
    with pytest.raises(FileNotFoundError):
        image_from_path(tmp_path / "missing.png")


def test_the_registry_s_new_methods_run_on_keras_through_the_same_numpy_functions(model, images):
    import cam_textbook

    tapped = keras.Model(model.inputs[0], model.get_layer("relu2").output)
    activations = tapped(images[:1]).numpy()
    np.testing.assert_allclose(CAM(model, layer="relu2", method="fem")(images[:1])[0],
                               cam_textbook.fem_map(activations[0]), atol=1e-5)
    for method in ("kpcacam", "eigengradcam", "segeigencam", "randomcam"):
        assert CAM(model, layer="relu2", method=method)(images).shape == (4, 12, 12)
    with pytest.raises(ValueError, match="needs hessian"):
        CAM(model, method="shapleycam")
