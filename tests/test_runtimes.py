"""Fast predictors: ONNX Runtime and PyTorch models in chunks, the chunk size, the device."""
import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

import imgexplain.predictor
from imgexplain.backends import onnx as onnx_backend
from imgexplain.backends import predictors
from imgexplain.backends import torch as torch_backend
from imgexplain.backends.onnx import from_onnx
from imgexplain.backends.predictors import CHUNK_SIZES, ChunkedPredictor
from imgexplain.backends.torch import from_torch
from imgexplain.predictor import PredictorError
from stripes import SIZE, stripe_detector, striped_image

RNG = np.random.default_rng(0)
IMAGES = RNG.uniform(0, 255, (37, 8, 8, 3)).astype(np.float32)


def channel_means_onnx(path, batch="N"):
    """An ONNX model: (batch, 3, 8, 8) -> (batch, 3), the mean of each channel; known answers."""
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["image"], ["means"], axes=[2, 3], keepdims=0)], "channel_means",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [batch, 3, 8, 8])],
        [helper.make_tensor_value_info("means", TensorProto.FLOAT, [batch, 3])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), path)
    return path


def channels_first(images):
    return images.transpose(0, 3, 1, 2)


@pytest.fixture
def model_path(tmp_path):
    return channel_means_onnx(tmp_path / "means.onnx")


# ONNX Runtime

@pytest.mark.parametrize("batch_size", [None, 1, 5, 64])
def test_onnx_predictor_gives_the_model_output_for_every_image_in_order(model_path, batch_size):
    predictor = from_onnx(model_path, preprocess=channels_first, batch_size=batch_size, device="cpu")
    images = IMAGES.copy()
    for _ in range(3):  # the first calls time the chunk sizes; the answer must not change
        np.testing.assert_allclose(predictor(images), IMAGES.mean(axis=(1, 2)), rtol=1e-5)
    np.testing.assert_array_equal(images, IMAGES)
    assert predictor.device == "cpu"


def test_onnx_model_with_a_fixed_batch_pads_the_last_chunk(tmp_path):
    predictor = from_onnx(channel_means_onnx(tmp_path / "four.onnx", batch=4), preprocess=channels_first)
    assert predictor.batch_size == 4
    np.testing.assert_allclose(predictor(IMAGES[:7]), IMAGES[:7].mean(axis=(1, 2)), rtol=1e-5)
    with pytest.raises(ValueError, match="exactly 4"):
        from_onnx(tmp_path / "four.onnx", batch_size=2)


def test_onnx_predictor_is_exported_by_the_predictor_module(model_path):
    assert imgexplain.predictor.from_onnx is from_onnx and imgexplain.predictor.from_torch is from_torch
    with pytest.raises(AttributeError, match="from_keras"):
        imgexplain.predictor.from_keras


def test_onnx_rejects_bad_files(tmp_path, model_path):
    with pytest.raises(FileNotFoundError, match="no ONNX model file"):
        from_onnx(tmp_path / "missing.onnx")
    (tmp_path / "text.onnx").write_text("not a model")
    with pytest.raises(ValueError, match="not an ONNX model"):
        from_onnx(tmp_path / "text.onnx")
    with pytest.raises(TypeError, match="path must be"):
        from_onnx(3)


def test_onnx_rejects_models_with_two_inputs(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["sum"])], "add",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", 2]) for name in "ab"],
        [helper.make_tensor_value_info("sum", TensorProto.FLOAT, ["N", 2])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8),
              tmp_path / "add.onnx")
    with pytest.raises(ValueError, match="takes 2 inputs"):
        from_onnx(tmp_path / "add.onnx")


@pytest.mark.parametrize("preprocess, match", [
    (None, r"takes input of shape \(N, 3, 8, 8\); got \(2, 8, 8, 3\)"),
    (lambda images: images[:, :2].transpose(0, 3, 1, 2), r"got \(2, 3, 2, 8\)"),
    (lambda images: images.reshape(2, -1), "takes input of shape"),
])
def test_onnx_input_that_does_not_fit_the_model_is_a_value_error(model_path, preprocess, match):
    predictor = from_onnx(model_path, preprocess=preprocess)
    with pytest.raises(ValueError, match=match):
        predictor(IMAGES[:2])


@pytest.mark.parametrize("kwargs, error, match", [
    ({"preprocess": "channels_first"}, TypeError, "preprocess must be callable"),
    ({"batch_size": 0}, ValueError, "batch_size must be None or a positive integer"),
    ({"batch_size": 2.0}, TypeError, "batch_size must be None or a positive integer"),
    ({"batch_size": True}, TypeError, "batch_size must be None or a positive integer"),
    ({"device": "gpu"}, ValueError, "device must be 'cpu', 'cuda'"),
    ({"device": 0}, TypeError, "device must be"),
])
def test_onnx_rejects_bad_arguments(model_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        from_onnx(model_path, **kwargs)


def test_onnx_empty_batch_is_a_value_error(model_path):
    with pytest.raises(ValueError, match="empty"):
        from_onnx(model_path, preprocess=channels_first)(IMAGES[:0])


# The chunk size

class FakeClockModel(ChunkedPredictor):
    """A model whose chunks take ``cost(size, run)`` seconds on a fake clock; output: the inputs' sums."""

    def __init__(self, cost, clock):
        super().__init__(lambda images: images, None, "cpu", "fake")
        self.cost, self.clock, self.runs = cost, clock, {}

    def _model_input(self, inputs):
        return np.asarray(inputs)

    def _run_chunk(self, chunk):
        run = self.runs[len(chunk)] = self.runs.get(len(chunk), 0) + 1
        self.clock.now += self.cost(len(chunk), run)
        return chunk.sum(axis=1)


class FakeClock:
    now = 0.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(predictors.time, "perf_counter", fake)
    return fake


def test_the_fastest_chunk_size_per_image_is_chosen_once(clock):
    # 8 images at a time are fastest per image; 32 is fast on its first run only, which is not counted.
    per_image = {1: 1.0, 2: 0.9, 4: 0.7, 8: 0.5, 16: 0.6, 32: 0.8}
    model = FakeClockModel(lambda size, run: size * (0.01 if size == 32 and run == 1 else per_image.get(size, 1.0)),
                           clock)
    inputs = np.arange(300.0).reshape(100, 3)
    np.testing.assert_array_equal(model(inputs), inputs.sum(axis=1))
    assert model.batch_size is None  # 100 images do not hold two runs of every candidate
    np.testing.assert_array_equal(model(inputs), inputs.sum(axis=1))
    assert model.batch_size == 8
    assert all(runs >= 2 for size, runs in model.runs.items() if size in CHUNK_SIZES)
    before = dict(model.runs)
    model(inputs[:20])
    assert model.runs[8] == before[8] + 2 and model.runs[4] == before.get(4, 0) + 1


def test_a_given_batch_size_is_used_without_timing(clock):
    model = FakeClockModel(lambda size, run: 1.0, clock)
    model.batch_size = 3
    model(np.zeros((10, 2)))
    assert model.runs == {3: 3, 1: 1}
    assert model.run(np.zeros((10, 2)), batch_size=5).shape == (10,) and model.runs[5] == 2


def test_a_model_that_returns_the_wrong_number_of_rows_is_a_predictor_error():
    class Short(FakeClockModel):
        def _run_chunk(self, chunk):
            return chunk[:-1].sum(axis=1)

    with pytest.raises(PredictorError, match="returned 1 rows for a chunk of 2"):
        Short(lambda size, run: 0, FakeClock()).run(np.zeros((2, 3)), batch_size=2)


# PyTorch

def small_convnet():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Dropout(0.5),
                               torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 5))


def test_torch_predictor_gives_the_module_output_in_eval_mode():
    module = small_convnet().train()
    predictor = from_torch(module, preprocess=channels_first, device="cpu")
    assert not module.training
    with torch.no_grad():
        expected = module(torch.from_numpy(channels_first(IMAGES).copy())).numpy()
    images = IMAGES.copy()
    for _ in range(3):
        np.testing.assert_allclose(predictor(images), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(images, IMAGES)
    assert predictor.module is module and predictor.device == "cpu"


def test_torch_predictor_takes_torchscript_and_exported_programs():
    module = small_convnet().eval()
    x = torch.from_numpy(channels_first(IMAGES[:4]).copy())
    with torch.no_grad():
        expected = module(x).numpy()
    scripted = torch.jit.script(module)
    exported = torch.export.export(module, (x,), dynamic_shapes=({0: torch.export.Dim("batch")},))
    for model in (scripted, exported):
        np.testing.assert_allclose(from_torch(model, preprocess=channels_first)(IMAGES[:4]), expected,
                                   rtol=1e-4, atol=1e-5)


def test_torch_predictor_errors():
    with pytest.raises(TypeError, match="module must be a torch.nn.Module"):
        from_torch(lambda images: images)
    with pytest.raises(TypeError, match="preprocess must be callable"):
        from_torch(small_convnet(), preprocess=3)
    with pytest.raises(PredictorError, match="Sequential failed on an input of shape"):
        from_torch(small_convnet())(IMAGES[:2])  # channels last: the convolution wants 3 channels first

    class Named(torch.nn.Module):
        def forward(self, x):
            return {"logits": x}

    with pytest.raises(PredictorError, match="returned dict; expected a tensor"):
        from_torch(Named())(IMAGES[:2])


# The device

@pytest.mark.parametrize("available, device, expected", [
    (["CUDAExecutionProvider", "CPUExecutionProvider"], None,
     [("CUDAExecutionProvider", {"device_id": 0}), "CPUExecutionProvider"]),
    (["CUDAExecutionProvider", "CPUExecutionProvider"], "cuda:1",
     [("CUDAExecutionProvider", {"device_id": 1}), "CPUExecutionProvider"]),
    (["CUDAExecutionProvider", "CPUExecutionProvider"], "cpu", ["CPUExecutionProvider"]),
    (["CPUExecutionProvider"], None, ["CPUExecutionProvider"]),
    (["CPUExecutionProvider"], "cpu", ["CPUExecutionProvider"]),
])
def test_onnx_providers_take_cuda_when_there_is_one(monkeypatch, available, device, expected):
    import onnxruntime

    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: available)
    assert onnx_backend.onnx_providers(device) == expected


def test_onnx_cuda_without_the_provider_is_a_value_error(monkeypatch):
    import onnxruntime

    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    with pytest.raises(ValueError, match="no CUDA provider.*onnxruntime-gpu"):
        onnx_backend.onnx_providers("cuda")


@pytest.mark.parametrize("has_cuda, device, expected", [
    (True, None, "cuda"), (True, "cpu", "cpu"), (True, "cuda:1", "cuda:1"), (False, None, "cpu"),
    (False, torch.device("cpu"), "cpu"),
])
def test_torch_device_takes_cuda_when_there_is_one(monkeypatch, has_cuda, device, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: has_cuda)
    assert torch_backend.torch_device(device) == torch.device(expected)


def test_torch_cuda_without_a_gpu_is_a_value_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="torch sees no CUDA device"):
        torch_backend.torch_device("cuda")
    with pytest.raises(ValueError, match="device must be"):
        torch_backend.torch_device("cuda:x")


# Saved models on the command line: ONNX on ONNX Runtime, PyTorch through from_torch

@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    """The stripe detector as ONNX (channels first and last) and as a torch.export file."""
    import warnings

    folder = tmp_path_factory.mktemp("models")
    batch = torch.export.Dim("batch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, layout in (("first", False), ("last", True)):
            example = torch.zeros((2, SIZE, SIZE, 3) if layout else (2, 3, SIZE, SIZE))
            torch.onnx.export(stripe_detector(layout), (example,), folder / f"{name}.onnx", dynamo=True,
                              dynamic_shapes={"x": {0: batch}}, external_data=False, verbose=False)
        program = torch.export.export(stripe_detector(), (torch.zeros(2, 3, SIZE, SIZE),),
                                      dynamic_shapes={"x": {0: batch}})
        torch.export.save(program, folder / "stripes.pt2")
    return folder


def test_saved_onnx_and_torch_models_give_the_same_probabilities(saved_models):
    from scipy.special import softmax

    from imgexplain import models

    images = np.stack([striped_image(), striped_image()[:, ::-1], np.full((SIZE, SIZE, 3), 128, np.uint8)])
    with torch.no_grad():
        expected = softmax(stripe_detector()(torch.from_numpy(channels_first(images / 255.0)).float()).numpy(), axis=1)
    for name in ("first.onnx", "last.onnx", "stripes.pt2"):
        classifier = models.load_model(str(saved_models / name), preprocess="unit", device="cpu")
        assert classifier.input_size == (SIZE, SIZE)
        np.testing.assert_allclose(classifier.predictor(images.astype(np.float32)), expected, atol=1e-5)
    assert isinstance(models.load_model(str(saved_models / "first.onnx")).model, onnx_backend.OnnxPredictor)


def test_command_explains_with_an_onnx_model_as_with_the_exported_one(saved_models, tmp_path, capsys):
    import pandas as pd
    from PIL import Image

    from imgexplain import cli

    image = tmp_path / "striped.png"
    Image.fromarray(striped_image()).save(image)
    anchors = []
    for name in ("first.onnx", "last.onnx", "stripes.pt2"):
        out = tmp_path / name
        status = cli.main(["explain", str(image), "--model", str(saved_models / name), "--preprocess", "unit",
                           "--method", "anchor", "--device", "cpu", "--out", str(out)])
        assert status == 0, capsys.readouterr().err
        anchors.append(list(pd.read_parquet(out / "results.parquet").anchor[0]))
    assert anchors[0] == anchors[1] == anchors[2] and anchors[0]


@pytest.mark.parametrize("extra, match", [
    (["--method", "gradcam"], "an .onnx file does not expose"),
    (["--method", "anchor", "--device", "gpu"], "--device: device must be 'cpu', 'cuda'"),
])
def test_command_rejects_cam_on_onnx_and_unknown_devices(saved_models, tmp_path, capsys, extra, match):
    from PIL import Image

    from imgexplain import cli

    image = tmp_path / "striped.png"
    Image.fromarray(striped_image()).save(image)
    argv = ["explain", str(image), "--model", str(saved_models / "first.onnx"), "--out", str(tmp_path / "out")]
    assert cli.main(argv + extra) == 2
    assert match in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_command_with_a_gpu_it_does_not_have_fails_in_one_line(saved_models, tmp_path, capsys, monkeypatch):
    from PIL import Image

    from imgexplain import cli

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    image = tmp_path / "striped.png"
    Image.fromarray(striped_image()).save(image)
    argv = ["explain", str(image), "--model", str(saved_models / "stripes.pt2"), "--method", "anchor",
            "--device", "cuda", "--out", str(tmp_path / "out")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("imgexplain: error: --device cuda: this machine has no such device")
    assert "--model" not in err and "device='" not in err
