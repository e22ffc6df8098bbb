"""Every backend through the same contract (imgexplain.backends.contract): torch, keras and onnx.

Each test runs once per backend of ``imgexplain.backends.FRAMEWORKS``; a new runtime is one module in
``imgexplain/backends`` plus its entry in ``SAVED``/``MODELS`` below, and passes the same checks.
"""
import os

import numpy as np
import pytest

from imgexplain import backends
from imgexplain.backends.contract import Backend, CAMCapable, CAMRunner
from imgexplain.cam.methods import REGISTRY
from imgexplain.cli_checks import cam_kinds
from imgexplain.model_files import FILE_KINDS, model_kind

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
pytestmark = pytest.mark.filterwarnings("ignore:`isinstance\\(treespec, LeafSpec\\)`:FutureWarning")
SIZE = 8
N_CLASSES = 3


def _torch_model():
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                               torch.nn.Flatten(), torch.nn.Linear(4, N_CLASSES)).eval()


def _keras_model():
    import keras

    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((SIZE, SIZE, 3)), keras.layers.Conv2D(4, 3, padding="same"),
                             keras.layers.ReLU(), keras.layers.GlobalAveragePooling2D(),
                             keras.layers.Dense(N_CLASSES)])


def _save_torch(folder):
    import torch

    path = folder / "model.pt2"
    program = torch.export.export(_torch_model(), (torch.zeros(2, 3, SIZE, SIZE),),
                                  dynamic_shapes=({0: torch.export.Dim.DYNAMIC},))
    torch.export.save(program, path)
    return path


def _save_keras(folder):
    path = folder / "model.keras"
    _keras_model().save(path)
    return path


def _save_onnx(folder):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(  # scores: the mean of each colour channel
        [helper.make_node("GlobalAveragePool", ["images"], ["pooled"]),
         helper.make_node("Flatten", ["pooled"], ["scores"])], "mean_colour",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", N_CLASSES])])
    path = folder / "model.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


SAVED = {"torch": _save_torch, "keras": _save_keras, "onnx": _save_onnx}


@pytest.fixture(params=backends.FRAMEWORKS)
def backend(request):
    return backends.backend_named(request.param)


@pytest.fixture
def saved_file(backend, tmp_path):
    return SAVED[backend.__name__.rpartition(".")[2]](tmp_path)


@pytest.fixture
def model(backend, saved_file):
    """A model of the backend's own type, loaded from its file."""
    return backend.load_saved(str(saved_file), model_kind(str(saved_file))).model


def _images(n=2):
    return np.random.default_rng(0).uniform(0, 255, (n, SIZE, SIZE, 3)).astype(np.float32)


def test_every_framework_has_a_test_model():
    assert set(SAVED) == set(backends.FRAMEWORKS)


def test_the_backend_conforms_to_the_protocol(backend):
    assert isinstance(backend, Backend)
    assert isinstance(backend.MODEL_TYPE, str) and backend.MODEL_TYPE
    assert backend.CAM_COMPUTES <= set(method.needs for method in REGISTRY.values())
    assert backends.provides(backend, "CAMBackend") == bool(backend.CAM_COMPUTES)
    if backend.CAM_COMPUTES:
        assert isinstance(backend, CAMCapable)


def test_its_saved_kinds_are_recognised_and_loaded_by_it(backend, saved_file):
    assert set(backend.SAVED_KINDS) <= set(FILE_KINDS)
    kind = model_kind(str(saved_file))
    assert kind in backend.SAVED_KINDS
    assert backends.backend_of_kind(kind) is backend
    if not backend.CAM_COMPUTES:
        assert not any(backend.SAVED_KINDS.values())


def test_it_owns_its_models_and_no_other(backend, model):
    assert backend.owns(model)
    assert backends.backend_for(model) is backend
    assert not backend.owns("a string") and not backend.owns(np.zeros((1, SIZE, SIZE, 3)))
    assert not backend.owns_tensor(np.zeros(3))
    for other in backends.FRAMEWORKS:
        if backends.backend_named(other) is not backend:
            assert not backends.backend_named(other).owns(model)


def test_its_predictor_scores_images_without_changing_them(backend, saved_file):
    saved = backend.load_saved(str(saved_file), model_kind(str(saved_file)))
    assert (saved.input_size, saved.channels) == ((SIZE, SIZE), 3)
    images = _images()
    kept = images.copy()
    model_input, scores = backend.saved_predictor(saved, lambda pictures: np.asarray(pictures, np.float32))
    values = np.asarray(scores(images))
    assert values.shape == (2, N_CLASSES) and np.all(np.isfinite(values))
    np.testing.assert_array_equal(images, kept)
    one_by_one = np.concatenate([np.asarray(scores(images[k:k + 1])) for k in range(2)])
    np.testing.assert_allclose(one_by_one, values, rtol=1e-5, atol=1e-6)
    assert model_input(images).shape[0] == 2


def test_class_activation_maps_follow_the_declaration(backend, model):
    from imgexplain import CAM

    if not backend.CAM_COMPUTES:
        with pytest.raises(TypeError, match="model must be"):
            CAM(model)
        return
    runner = backends.cam_backend(model)
    assert isinstance(runner, CAMRunner)
    assert runner.computes == backend.CAM_COMPUTES
    inputs = _images().transpose(0, 3, 1, 2) if runner.channels_first else _images()
    maps = CAM(model)(inputs, targets=[0, 2])
    assert maps.shape == (2, SIZE, SIZE) and maps.min() >= 0 and maps.max() <= 1
    assert runner.layer_names is None or len(runner.layer_names) == 1
    np.testing.assert_allclose(CAM(model).predict(inputs), backend.predict(model, inputs), rtol=1e-4, atol=1e-5)
    for name, method in REGISTRY.items():
        if method.needs in backend.CAM_COMPUTES:
            CAM(model, method=name)
        else:
            with pytest.raises(ValueError, match=f"needs {method.needs}, which the .* backend does not compute"):
                CAM(model, method=name)


def test_the_command_line_refuses_maps_only_for_kinds_declared_without_layers():
    declared = {kind for name in backends.FRAMEWORKS
                for kind, layers in backends.backend_named(name).SAVED_KINDS.items() if layers}
    assert set(cam_kinds()) == declared
    assert "onnx" not in declared and "torchscript" not in declared
