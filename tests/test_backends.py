"""The backends' registry: which backend owns a model, found without importing any framework."""

import pytest

from imgexplain import backends


def test_an_unknown_model_is_a_type_error_naming_what_is_accepted():
    with pytest.raises(TypeError, match=r"model must be a keras.Model or a torch.nn.Module or an ONNX model "
                                        r"\(imgexplain.predictor.from_onnx\); got builtins.function"):
        backends.backend_for(lambda images: images)
    with pytest.raises(TypeError, match=r"model must be a keras.Model or a torch.nn.Module; got builtins.int"):
        backends.cam_backend(3)


def test_each_framework_owns_its_models():
    torch = pytest.importorskip("torch")
    module = torch.nn.Linear(2, 2)
    assert backends.backend_for(module) is backends.backend_named("torch")
    assert backends.backend_for(module, needs="randomize").__name__ == "imgexplain.backends.torch"
    assert not backends.backend_named("keras").owns(module)
    assert not backends.backend_named("onnx").owns(module)


def test_unknown_frameworks_and_file_kinds_are_value_errors():
    with pytest.raises(ValueError, match="framework must be one of"):
        backends.backend_named("jax")
    with pytest.raises(ValueError, match="no backend loads saved models of kind 'pickle'"):
        backends.load_saved("model.pkl", "pickle")
