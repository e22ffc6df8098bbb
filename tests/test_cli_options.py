"""The command line's options for what is explained and shown (--top-k, --layer, --segmentation, --n-segments,
--p-sample, --quiet, --verbose, --multilabel), its one-line hints, and multi-label models."""
import json
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from test_cli import _run, _table, _torchscript_argv, images, torchscript_model  # noqa: F401 (fixtures)

from imgexplain import classes
from imgexplain.predictor import PredictorError

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")


def _sigmoid_onnx(path):
    """An ONNX model of three independent labels: sigmoid(4 * (mean of channel c - 0.5)) for c = R, G, B."""
    import onnx
    from onnx import TensorProto, helper

    nodes = [helper.make_node("GlobalAveragePool", ["images"], ["pooled"]),
             helper.make_node("Flatten", ["pooled"], ["means"]),
             helper.make_node("Sub", ["means", "half"], ["centred"]),
             helper.make_node("Mul", ["centred", "four"], ["scores"]),
             helper.make_node("Sigmoid", ["scores"], ["labels"])]
    graph = helper.make_graph(
        nodes, "three_labels", [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 16, 16])],
        [helper.make_tensor_value_info("labels", TensorProto.FLOAT, ["N", 3])],
        initializer=[helper.make_tensor("half", TensorProto.FLOAT, [], [0.5]),
                     helper.make_tensor("four", TensorProto.FLOAT, [], [4.0])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_independent_probabilities_are_kept_never_softmaxed():
    sigmoids = [[0.77, 0.69, 0.62]]
    np.testing.assert_array_equal(classes.probabilities(sigmoids), sigmoids)
    np.testing.assert_array_equal(classes.probabilities(sigmoids, multilabel=True), sigmoids)
    exclusive = classes.probabilities(sigmoids, multilabel=False)  # said to be scores of exclusive classes
    np.testing.assert_allclose(exclusive.sum(axis=1), 1.0)
    np.testing.assert_allclose(classes.probabilities([[2.0, 0.0]]).sum(axis=1), 1.0)  # logits: a softmax
    with pytest.raises(PredictorError, match="multilabel: the model returned values from 0 to 2"):
        classes.probabilities([[2.0, 0.0]], multilabel=True)
    with pytest.raises(TypeError, match="multilabel must be None, True or False"):
        classes.probabilities(sigmoids, multilabel="yes")


@pytest.mark.parametrize("flag", [[], ["--multilabel"]])
def test_a_multilabel_model_is_explained_per_label_with_its_own_probabilities(flag, tmp_path, capsys):
    model = _sigmoid_onnx(tmp_path / "labels.onnx")
    pixels = np.zeros((16, 16, 3), np.uint8)
    pixels[..., 0], pixels[..., 1], pixels[..., 2] = 250, 200, 170
    pixels[:8, :8, 0] = 150  # a darker red quadrant
    image = tmp_path / "colours.png"
    Image.fromarray(pixels).save(image)
    out = tmp_path / "out"
    status, stdout, stderr = _run(["explain", image, "--model", model, "--preprocess", "unit", "--method", "anchor",
                                   "--out", out, "--top-k", "3", *flag], capsys)
    assert status == 0, stderr
    row = _table(out).iloc[0]
    means = pixels.reshape(-1, 3).mean(axis=0) / 255
    expected = 1 / (1 + np.exp(-4 * (means - 0.5)))  # 0.82, 0.69, 0.62, not softmaxed to 0.38, 0.33, 0.29
    assert [top["index"] for top in row.top5] == [0, 1, 2]
    np.testing.assert_allclose([top["p"] for top in row.top5], expected, rtol=1e-5)
    assert row.target == 0 and row.precision >= 0.95  # the anchor of "label 0 present"
    page = (out / "report.html").read_text()
    assert "label 0 class 0 present" in page and "independent probabilities" in page


def test_top_k_segmentation_n_segments_and_p_sample_are_used_and_shown(torchscript_model, images, tmp_path,
                                                                         capsys):
    out = tmp_path / "out"
    argv = _torchscript_argv(torchscript_model, images[:1], out, "--top-k", "1", "--n-segments", "4",
                             "--p-sample", "0.3", "--quiet")
    status, stdout, stderr = _run(argv, capsys)
    assert status == 0 and stdout.strip() == str(out / "report.html") and stderr == ""  # --quiet: the path only
    row = _table(out).iloc[0]
    assert len(row.top5) == 1
    assert "5 slic superpixels" not in row.pictures[-1]["caption"]
    assert int(row.pictures[-1]["caption"].split()[0]) <= 6  # about 4 superpixels, not 15
    summary = json.loads((out / "summary.json").read_text())
    assert summary["arguments"]["p_sample"] == 0.3 and "'n_segments': 4" in summary["arguments"]["segmentation"]
    assert "None" not in (out / "report.html").read_text().split("<h2>all images</h2>")[0]

    other = tmp_path / "felzenszwalb"
    argv = _torchscript_argv(torchscript_model, images[:1], other, "--segmentation", "felzenszwalb", "--verbose")
    status, _, stderr = _run(argv, capsys)
    assert status == 0
    assert "felzenszwalb superpixels" in _table(other).iloc[0].pictures[-1]["caption"]
    assert "imgexplain: " in stderr  # --verbose: the anchor search's progress


def test_two_runs_into_one_out_are_both_in_the_report(torchscript_model, images, tmp_path, capsys):
    out = tmp_path / "out"
    assert _run(_torchscript_argv(torchscript_model, images[:1], out), capsys)[0] == 0
    assert _run(_torchscript_argv(torchscript_model, images[1:], out), capsys)[0] == 0
    page = (out / "report.html").read_text()
    assert str(images[0].absolute()) in page and str(images[1].absolute()) in page
    assert json.loads((out / "summary.json").read_text())["images"] == 2


def test_a_cam_only_run_lists_no_anchor_arguments(tmp_path):
    from types import SimpleNamespace

    from imgexplain import cli

    args = SimpleNamespace(model="efficientnet-lite0", multilabel=False, top_k=5, target=None, layer=None,
                           threshold=0.95, seed=0, max_pixels=10, segmentation="slic", n_segments=None, p_sample=0.5)
    settings = {"methods": ["gradcam"], "kind": "builtin", "framework": "torch", "input_size": None,
                "preprocess": "none", "labels": None}
    shown = cli._run_arguments(args, settings)
    assert not {"threshold", "seed", "segmentation", "p_sample", "tau"} & set(shown)
    assert None not in shown.values()
    assert {"threshold", "p_sample"} <= set(cli._run_arguments(args, dict(settings, methods=["anchor"])))


def _hint_inputs(tmp_path, images):
    import torch

    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "notes.txt").write_text("not an image")
    state_dict = tmp_path / "weights.pth"
    torch.save(torch.nn.Linear(2, 2).state_dict(), state_dict)
    legacy = tmp_path / "model.h5"
    legacy.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    return {
        "method typo": (["explain", images[0], "--method", "gradcma"],
                        "unknown method 'gradcma'; did you mean 'gradcam'"),
        "empty folder": (["explain", empty], "no image files in the folder .*empty' \\(searched recursively for "),
        "state dict": (["explain", images[0], "--model", state_dict],
                       "weights.pth' is not a model file; .*torch.save file .*torch.export.save"),
        "legacy h5": (["explain", images[0], "--model", legacy], "model.h5' is not a model file; .*legacy Keras HDF5"),
        "top k": (["explain", images[0], "--top-k", "0"], "--top-k: expected a number of classes >= 1; got 0"),
        "p sample": (["explain", images[0], "--p-sample", "1.5"], "--p-sample: p_sample must be a number in \\[0, 1\\]"),
        "n segments": (["explain", images[0], "--segmentation", "quickshift", "--n-segments", "9"],
                       "--n-segments applies to --segmentation slic"),
        "layer without cam": (["explain", images[0], "--method", "anchor", "--layer", "x"],
                              "--layer applies to the class activation maps"),
        "segmentation without anchor": (["explain", images[0], "--method", "gradcam", "--segmentation", "quickshift"],
                                        "--segmentation applies to --method anchor"),
        "multilabel builtin": (["explain", images[0], "--multilabel"], "--multilabel: efficientnet-lite0 is a softmax"),
        "quiet and verbose": (["explain", images[0], "--quiet", "--verbose"], "not allowed with argument"),
    }


@pytest.mark.parametrize("case", ["method typo", "empty folder", "state dict", "legacy h5", "top k", "p sample",
                                  "n segments", "layer without cam", "segmentation without anchor",
                                  "multilabel builtin", "quiet and verbose"])
def test_bad_options_are_one_line_with_a_hint_and_status_2(case, tmp_path, images, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv, message = _hint_inputs(tmp_path, images)[case]
    before = sorted(tmp_path.rglob("*"))
    status, stdout, stderr = _run(argv, capsys)
    assert status == 2 and stdout == ""
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("imgexplain: error: ")
    assert re.search(message, lines[0]), lines[0]
    assert sorted(tmp_path.rglob("*")) == before


def test_a_layer_the_model_does_not_have_is_one_line_before_any_image(tmp_path, images, capsys):
    import torch
    from test_cli import SIZE, _small_torch_net

    model = tmp_path / "net.pt2"
    torch.export.save(torch.export.export(_small_torch_net(), (torch.zeros(1, 3, SIZE, SIZE),)), model)
    out = tmp_path / "out"
    status, stdout, stderr = _run(["explain", images[0], "--model", model, "--method", "gradcam", "--layer", "nope",
                                   "--out", out], capsys)
    assert status == 2 and stdout == ""
    assert stderr.splitlines() == [stderr.strip()] and "--layer: model has no module named 'nope'" in stderr
    assert not (out / "results.parquet").exists()


def test_python_dash_m_imgexplain_runs_the_command():
    result = subprocess.run([sys.executable, "-m", "imgexplain", "--version"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and result.stdout.startswith("imgexplain ")


VALUES = [(-0.1, False), (0.0, True), (0.5, True), (1.0, True), (1.5, False), (float("nan"), False)]


@pytest.mark.parametrize("name, option", [("threshold", "--threshold"), ("p_sample", "--p-sample")])
@pytest.mark.parametrize("value, accepted", VALUES)
def test_the_command_and_the_library_accept_the_same_thresholds_and_p_samples(name, option, value, accepted):
    from imgexplain import AnchorImage
    from imgexplain.cli_checks import InputError, check_anchor_number

    calls = []
    explainer = AnchorImage(lambda images: calls.append(len(images)) or np.zeros(len(images), int), (4, 4),
                            segmentation_fn=lambda image: np.arange(16).reshape(4, 4) // 8)
    calls.clear()
    if accepted:
        check_anchor_number(option, name, value)
        explanation = explainer.explain(np.zeros((4, 4)), **{name: value})
        assert calls  # explained
        if name == "p_sample" or value < 1:  # the label never changes: the empty anchor passes (no bound exceeds 1)
            assert explanation.raw["feature"] == []
    else:
        with pytest.raises(InputError, match=rf"^{option}: {name} must be a number in \[0, 1\]"):
            check_anchor_number(option, name, value)
        with pytest.raises(ValueError, match=rf"^{name} must be a number in \[0, 1\]"):
            explainer.explain(np.zeros((4, 4)), **{name: value})
        assert calls == []  # refused before any model call
