"""Model files as the command line and imgexplain.models name them: each kind by its own name (from the
backends' registry), and each failure by what it is (a missing device, a file that cannot be read, a bug)."""
import zipfile

import numpy as np
import pytest
from PIL import Image

from imgexplain import backends, cli, models
from imgexplain.backends import DeviceError, ModelError

SIZE = 8


def _onnx_file(folder):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["images"], ["pooled"]),
         helper.make_node("Flatten", ["pooled"], ["scores"])], "mean_colour",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 3])])
    path = folder / "colours.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


@pytest.fixture
def onnx_file(tmp_path):
    return _onnx_file(tmp_path)


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "grey.png"
    Image.fromarray(np.full((SIZE, SIZE, 3), 128, np.uint8)).save(path)
    return path


def _error(argv, capsys):
    status = cli.main([str(arg) for arg in argv])
    lines = capsys.readouterr().err.splitlines()
    assert status == 2 and len(lines) == 1
    return lines[0]


def test_an_onnx_file_is_called_an_onnx_model_not_a_torch_one(onnx_file, image, tmp_path, capsys):
    line = _error(["explain", image, "--model", onnx_file, "--framework", "keras", "--method", "anchor",
                   "--out", tmp_path / "out"], capsys)
    assert "colours.onnx' is an .onnx file, an ONNX model" in line
    assert "torch" not in line


def test_maps_on_an_onnx_file_are_refused_from_the_backend_s_declaration(onnx_file, image, tmp_path, capsys):
    line = _error(["explain", image, "--model", onnx_file, "--method", "gradcam", "--out", tmp_path / "out"], capsys)
    assert ("--method gradcam: class activation maps need the model's layers, which an .onnx file does not "
            "expose; use --method anchor, or save the model as a .keras file or a torch.export file (.pt2)") in line


def test_an_unknown_framework_is_a_value_error_not_a_device_error():
    with pytest.raises(ValueError, match="framework must be one of") as caught:
        models.load_builtin("tensorflow")
    assert not isinstance(caught.value, DeviceError)


def test_a_missing_device_is_a_device_error(onnx_file, monkeypatch):
    import onnxruntime

    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    with pytest.raises(DeviceError, match="has no CUDA provider"):
        models.load_saved_model(str(onnx_file), "onnx", device="cuda")


def test_a_damaged_file_is_a_model_error_naming_the_loader_s_error(tmp_path):
    damaged = tmp_path / "damaged.keras"
    with zipfile.ZipFile(damaged, "w") as archive:
        archive.writestr("config.json", "{not json")
    assert models.model_kind(str(damaged)) == "keras"
    with pytest.raises(ModelError, match="cannot load .*damaged.keras'") as caught:
        models.load_saved_model(str(damaged), "keras")
    assert not isinstance(caught.value, DeviceError)


def test_an_unexpected_error_of_a_loader_is_not_hidden(onnx_file, monkeypatch):
    def broken(path, kind, device=None):
        raise ZeroDivisionError("a bug, not a damaged file")

    monkeypatch.setattr(backends, "load_saved", broken)
    with pytest.raises(ZeroDivisionError):
        models.load_saved_model(str(onnx_file), "onnx")


def test_the_expected_kinds_are_listed_from_one_table():
    with pytest.raises(ModelError, match="expected 'efficientnet-lite0', a .keras file, a torch.export file "
                                         r"\(.pt2\), a TorchScript file or an .onnx file"):
        models.model_kind("no-such-model.bin")


def test_a_method_the_framework_does_not_compute_is_refused_before_loading(image, tmp_path, capsys, monkeypatch):
    def must_not_load(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(models, "load_builtin", must_not_load)
    line = _error(["explain", image, "--framework", "keras", "--method", "gradcam,fullgrad",
                   "--out", tmp_path / "out"], capsys)
    assert line.endswith("--method fullgrad: it needs bias gradients, which keras models do not compute "
                         "(only torch models do)")
