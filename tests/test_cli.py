"""The `imgexplain` command end to end, on small models saved by the tests and small image files."""
import json
import os
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from imgexplain import cli, models, render

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# TorchScript is one of the files the command reads; torch 2.13 marks its functions deprecated, and
# torch.export.unflatten warns about torch's own internals.
pytestmark = [pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning"),
              pytest.mark.filterwarnings("ignore:`isinstance\\(treespec, LeafSpec\\)`:FutureWarning")]

SIZE = 32


class _Sources(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sources = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.sources.append(dict(attrs)["src"])


def _linked_pictures(report_path):
    parser = _Sources()
    parser.feed(report_path.read_text())
    return parser.sources


def _striped_image():
    """Flat colours, except vertical black and white stripes in the top-left quadrant."""
    image = np.zeros((SIZE, SIZE, 3), dtype=np.uint8)
    image[:, :] = (40, 120, 200)
    image[SIZE // 2:, :] = (200, 160, 40)
    image[:SIZE // 2, :SIZE // 2] = 0
    image[:SIZE // 2, :SIZE // 2:2] = 255
    return image


def _stripe_energy(pixels):
    """What the TorchScript test model measures: mean horizontal change in the top-left quadrant."""
    half = SIZE // 2
    quadrant = pixels[:half, :half].astype(np.float64) / 255
    return np.abs(np.diff(quadrant, axis=1)).sum(axis=2).mean()


@pytest.fixture(scope="module")
def torchscript_model(tmp_path_factory):
    """A TorchScript model of class 1 when the top-left quadrant is striped, class 0 when it is flat."""
    import torch

    class StripeDetector(torch.nn.Module):
        def forward(self, x):
            half = x.shape[2] // 2
            quadrant = x[:, :, :half, :half]
            energy = (quadrant[:, :, :, 1:] - quadrant[:, :, :, :-1]).abs().sum(1).mean((1, 2))
            return torch.stack([1.0 - energy, energy - 1.0], dim=1) * 4.0

    path = tmp_path_factory.mktemp("models") / "stripes.pt"
    torch.jit.save(torch.jit.trace(StripeDetector(), torch.zeros(1, 3, SIZE, SIZE)), str(path))
    return path


@pytest.fixture(scope="module")
def linear_model(tmp_path_factory):
    """A TorchScript model that takes only 32x32 images."""
    import torch

    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * SIZE * SIZE, 2))
    path = tmp_path_factory.mktemp("models") / "linear.pt"
    torch.jit.save(torch.jit.trace(net, torch.zeros(1, 3, SIZE, SIZE)), str(path))
    return path


def _small_torch_net():
    import torch

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 4, 3),
                              torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3))
    rng = np.random.default_rng(0)
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.copy_(torch.from_numpy(rng.normal(scale=0.5, size=parameter.shape).astype(np.float32)))
    return net.eval()


@pytest.fixture(scope="module")
def exported_model(tmp_path_factory):
    """A small conv net saved with torch.export for batches of one image, and the net itself."""
    import torch

    net = _small_torch_net()
    path = tmp_path_factory.mktemp("models") / "net.pt2"
    torch.export.save(torch.export.export(net, (torch.zeros(1, 3, SIZE, SIZE),)), path)
    return path, net


@pytest.fixture(scope="module")
def keras_model(tmp_path_factory):
    import keras

    model = keras.Sequential([
        keras.Input((SIZE, SIZE, 3)),
        keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="features",
                            kernel_initializer=keras.initializers.GlorotUniform(seed=0)),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(3, activation="softmax", kernel_initializer=keras.initializers.GlorotUniform(seed=1)),
    ])
    path = tmp_path_factory.mktemp("models") / "tiny.keras"
    model.save(path)
    return path


@pytest.fixture
def images(tmp_path):
    """A striped PNG at the model's size, and a JPEG of another size (resized by the command)."""
    striped = tmp_path / "striped.png"
    Image.fromarray(_striped_image()).save(striped)
    photo = tmp_path / "photo one.jpg"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, size=(45, 60, 3), dtype=np.uint8)).save(photo)
    return striped, photo


def _run(argv, capsys):
    status = cli.main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _torchscript_argv(model, images, out, *extra):
    return ["explain", *images, "--model", model, "--input-size", f"{SIZE},{SIZE}", "--preprocess", "unit",
            "--method", "anchor", "--out", out, *extra]


# --- end to end ------------------------------------------------------------------------------------------


def test_explain_with_a_torchscript_model_writes_pictures_and_report(torchscript_model, images, tmp_path, capsys):
    out = tmp_path / "out"
    status, stdout, stderr = _run(_torchscript_argv(torchscript_model, images, out), capsys)
    assert status == 0, stderr
    assert stdout.strip() == str(out / "report.html")
    assert "explaining" in stderr  # the progress bar

    linked = _linked_pictures(out / "report.html")
    assert sorted(linked) == sorted(p.name for p in out.glob("*.png"))
    assert linked[:3] == ["striped-input.png", "striped-anchor.png", "striped-superpixels.png"]
    assert "photo_one-input.png" in linked
    for name in linked:
        assert Image.open(out / name).size == (SIZE, SIZE)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "photo one.jpg", "striped.png"]

    summary = json.loads((out / "summary.json").read_text())
    striped = summary["images"][0]
    assert striped["name"] == str(images[0])
    energy = _stripe_energy(_striped_image())
    expected = 1 / (1 + np.exp(-8 * (energy - 1)))  # softmax of the two logits, taken by the command
    (label, probability), (other, _) = striped["predictions"]
    assert label == "1 class 1" and other == "0 class 0"
    assert probability == pytest.approx(expected, rel=1e-5)
    assert striped["target"] == "1 class 1"
    assert set(striped["timings"]) == {"anchor"}
    assert summary["arguments"]["preprocess"] == "unit"

    # The anchor keeps stripes: every superpixel in it lies mostly in the striped quadrant.
    assert float(striped["anchor"]["precision"]) >= 0.95
    anchor = np.asarray(Image.open(out / "striped-anchor.png"))
    kept = np.all(anchor == _striped_image(), axis=2)
    half = SIZE // 2
    assert kept[:half, :half].mean() > 0.3
    assert kept[half:, :].sum() + kept[:half, half:].sum() < kept[:half, :half].sum()


def test_explain_with_a_keras_model_draws_heatmaps(keras_model, images, tmp_path, capsys):
    out = tmp_path / "out"
    status, _, stderr = _run(["explain", images[1], "--model", keras_model, "--preprocess", "unit",
                              "--method", "gradcam,gradcam++", "--target", "2", "--out", out], capsys)
    assert status == 0, stderr
    linked = _linked_pictures(out / "report.html")
    assert linked == ["photo_one-input.png", "photo_one-gradcam.png", "photo_one-gradcampp.png"]
    original = np.asarray(Image.open(out / "photo_one-input.png"))
    for name in linked[1:]:
        overlay = np.asarray(Image.open(out / name))
        assert overlay.shape[:2] == original.shape[:2] == (SIZE, SIZE)
        assert not np.array_equal(overlay[:, :, :3], original)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["arguments"]["input size"] == f"{SIZE}x{SIZE}"  # read from the .keras model
    assert summary["images"][0]["target"] == "2 class 2"
    assert set(summary["images"][0]["timings"]) == {"gradcam", "gradcam++"}
    assert "colorbar" in (out / "report.html").read_text()


def test_explain_with_an_exported_torch_model_matches_cam_on_the_net(exported_model, images, tmp_path, capsys):
    from imgexplain.cam.api import CAM

    path, net = exported_model
    out = tmp_path / "out"
    status, _, stderr = _run(["explain", images[1], "--model", path, "--preprocess", "tf",
                              "--method", "gradcam,anchor", "--out", out], capsys)
    assert status == 0, stderr
    image = np.asarray(Image.open(out / "photo_one-input.png"))
    assert image.shape == (SIZE, SIZE, 3)  # the size the exported program fixes
    pixels = models.PREPROCESSING["tf"](image.astype(np.float32)).transpose(2, 0, 1)[np.newaxis]
    heatmap = CAM(net)(pixels)[0]
    expected = render.overlay_heatmap(image, heatmap, colormap="viridis").convert("RGB")
    np.testing.assert_array_equal(np.asarray(Image.open(out / "photo_one-gradcam.png")), np.asarray(expected))
    summary = json.loads((out / "summary.json").read_text())
    import torch

    with torch.no_grad():
        probs = torch.softmax(net(torch.from_numpy(pixels.astype(np.float32))), dim=1)[0].numpy()
    assert summary["images"][0]["target"] == f"{probs.argmax()} class {probs.argmax()}"
    assert summary["images"][0]["predictions"][0][1] == pytest.approx(probs.max(), rel=1e-5)
    assert "photo_one-anchor.png" in _linked_pictures(out / "report.html")


@pytest.mark.slow
def test_anchors_on_ray_workers_are_those_found_in_this_process(torchscript_model, images, tmp_path, capsys):
    pytest.importorskip("ray")
    summaries = []
    for workers in ("0", "2"):
        out = tmp_path / f"out{workers}"
        status, _, stderr = _run(_torchscript_argv(torchscript_model, images, out, "--workers", workers), capsys)
        assert status == 0, stderr
        summaries.append(json.loads((out / "summary.json").read_text()))
        assert (out / "striped-anchor.png").exists()
    here, on_ray = ([(image["name"], image["anchor"]) for image in summary["images"]] for summary in summaries)
    assert on_ray == here
    assert summaries[1]["arguments"]["anchor workers"] == 2
    assert all(image["timings"]["anchor"] > 0 for image in summaries[1]["images"])


def test_a_second_run_replaces_the_first(torchscript_model, images, tmp_path, capsys):
    out = tmp_path / "out"
    assert _run(_torchscript_argv(torchscript_model, images, out), capsys)[0] == 0
    assert _run(_torchscript_argv(torchscript_model, images[1:], out), capsys)[0] == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "photo_one-anchor.png", "photo_one-input.png", "photo_one-superpixels.png", "report.html", "summary.json"]


def test_images_with_the_same_name_get_distinct_pictures(torchscript_model, tmp_path, capsys):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        Image.fromarray(_striped_image()).save(tmp_path / folder / "cat.png")
    out = tmp_path / "out"
    argv = _torchscript_argv(torchscript_model, [tmp_path / "a" / "cat.png", tmp_path / "b" / "cat.png"], out)
    assert _run(argv, capsys)[0] == 0
    linked = _linked_pictures(out / "report.html")
    assert "cat-input.png" in linked and "cat-2-input.png" in linked
    assert len(set(linked)) == len(linked) == 6


def test_demo_explains_the_sample_photographs(keras_model, tmp_path, capsys, monkeypatch):
    """The demo's wiring, with the small Keras model standing in for the built-in one."""
    small = models.load_saved_model(str(keras_model), "keras", None, "unit")
    monkeypatch.setattr(models, "load_builtin", lambda framework: small)
    out = tmp_path / "demo"
    status, stdout, stderr = _run(["demo", "--out", out], capsys)
    assert status == 0, stderr
    assert stdout.strip() == f"report written to {out / 'report.html'}"
    linked = _linked_pictures(out / "report.html")
    assert [name for name in linked if name.endswith("-input.png")] == [
        f"{name}-input.png" for name in cli.DEMO_SAMPLES]
    assert len(linked) == 4 * len(cli.DEMO_SAMPLES)  # input, anchor, superpixels, gradcam


@pytest.mark.slow
def test_explain_with_the_builtin_model(tmp_path, capsys):
    from imgexplain import datasets

    chelsea = tmp_path / "chelsea.png"
    Image.fromarray(datasets.load_samples(target_size=None, names=["chelsea"])["chelsea"]).save(chelsea)
    out = tmp_path / "out"
    status, _, stderr = _run(["explain", chelsea, "--method", "gradcam", "--out", out], capsys)
    assert status == 0, stderr
    summary = json.loads((out / "summary.json").read_text())
    label, probability = summary["images"][0]["predictions"][0]
    assert label == "285 Egyptian_cat"
    assert probability == pytest.approx(0.79, abs=0.02)
    overlay = Image.open(out / "chelsea-gradcam.png")
    assert overlay.size == (224, 224)


# --- bad input -------------------------------------------------------------------------------------------


def _bad_inputs(tmp_path, torchscript_model, linear_model, images):
    import torch

    batch_of_two = tmp_path / "pairs.pt2"
    torch.export.save(torch.export.export(_small_torch_net(), (torch.zeros(2, 3, SIZE, SIZE),)), batch_of_two)
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(images[0].read_bytes()[:60])
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("keep me")
    ts = ["--model", torchscript_model, "--input-size", f"{SIZE},{SIZE}", "--method", "anchor"]
    return {
        "missing image": (["explain", tmp_path / "nope.png", *ts], "no such image file: .*nope.png"),
        "folder as image": (["explain", tmp_path, *ts], "not a file"),
        "not an image": (["explain", text, *ts], "not an image \\(Pillow cannot read it\\): .*notes.png"),
        "damaged image": (["explain", truncated, *ts], "damaged image file .*truncated.png"),
        "unknown method": (["explain", images[0], "--method", "anchor,lime"],
                           "--method: unknown method 'lime'; choose among anchor, gradcam"),
        "unknown model": (["explain", images[0], "--model", "resnet50"], "--model: unknown model 'resnet50'"),
        "model not a model": (["explain", images[0], "--model", images[0]], "striped.png' is not a model file"),
        "fixed batch": (["explain", images[0], "--model", batch_of_two], "exported for batches of exactly 2 images"),
        "no input size": (["explain", images[0], "--model", torchscript_model, "--method", "anchor"],
                          "--input-size H,W is needed for a TorchScript model"),
        "bad input size": (["explain", images[0], "--model", torchscript_model, "--input-size", "32"],
                           "--input-size: expected H,W"),
        "cam on torchscript": (["explain", images[0], *ts, "--method", "anchor,gradcam"],
                               "--method gradcam: class activation maps need the model's layers"),
        "threshold": (["explain", images[0], "--threshold", "1.5"], "--threshold: expected a number in \\(0, 1\\]"),
        "negative workers": (["explain", images[0], "--workers", "-1"], "--workers: expected a number of workers >= 0"),
        "negative target": (["explain", images[0], "--target", "-1"], "--target: expected a class index >= 0"),
        "target too large": (["explain", images[0], *ts, "--target", "2"],
                             "--target: 2 is not a class of stripes.pt, which has 2 classes"),
        "preprocess builtin": (["explain", images[0], "--preprocess", "unit"],
                               "--preprocess applies to your own saved model"),
        "framework mismatch": (["explain", images[0], *ts, "--framework", "keras"],
                               "--framework keras: .*stripes.pt' is a torch model"),
        "model fails": (["explain", images[0], "--model", linear_model, "--input-size", "16,16",
                         "--method", "anchor"], "--model: linear.pt failed on an input of 16x16 pixels .*: RuntimeError"),
        "model returns NaN": (["explain", images[0], "--model", torchscript_model, "--input-size", "1,1",
                               "--method", "anchor"], "--model: stripes.pt returned NaN or infinite values"),
        "foreign out": (["explain", images[0], *ts, "--out", foreign],
                        "--out: .* holds files that imgexplain did not write"),
        "out under a file": (["explain", images[0], *ts, "--out", images[0] / "out"],
                             "--out: cannot create .*striped.png' is a file, not a folder"),
        "unknown option": (["explain", images[0], "--colour", "red"], "unrecognized arguments: --colour red"),
        "no command": ([], "the following arguments are required: COMMAND"),
    }


@pytest.mark.parametrize("case", [
    "missing image", "folder as image", "not an image", "damaged image", "unknown method", "unknown model",
    "model not a model", "fixed batch", "no input size", "bad input size", "cam on torchscript", "threshold",
    "negative workers", "negative target",
    "target too large", "preprocess builtin", "framework mismatch", "model fails", "model returns NaN", "foreign out",
    "out under a file", "unknown option", "no command",
])
def test_bad_input_is_one_line_and_status_2(case, tmp_path, torchscript_model, linear_model, images, capsys,
                                            monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv, message = _bad_inputs(tmp_path, torchscript_model, linear_model, images)[case]
    before = sorted(tmp_path.rglob("*"))
    status, stdout, stderr = _run(argv, capsys)
    assert status == 2
    assert stdout == ""
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("imgexplain: error: ")
    assert re.search(message, lines[0]), lines[0]
    assert sorted(tmp_path.rglob("*")) == before  # nothing written, not even a partial folder


def test_every_file_is_checked_before_a_model_is_loaded(images, tmp_path, capsys, monkeypatch):
    def must_not_load(*args, **kwargs):
        raise AssertionError("a model was loaded before the files were checked")

    monkeypatch.setattr(models, "load_builtin", must_not_load)
    status, _, stderr = _run(["explain", images[0], tmp_path / "missing.jpg", "--out", tmp_path / "out"], capsys)
    assert status == 2
    assert "missing.jpg" in stderr


def test_a_failure_midway_leaves_no_report(torchscript_model, images, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    assert _run(_torchscript_argv(torchscript_model, images, out), capsys)[0] == 0
    previous = sorted(p.name for p in out.iterdir())
    original, calls = render.anchor_picture, []

    def interrupted_on_the_second_image(*args):
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(*args)

    monkeypatch.setattr(render, "anchor_picture", interrupted_on_the_second_image)
    status, _, stderr = _run(_torchscript_argv(torchscript_model, images, out), capsys)
    assert status == 130
    assert "interrupted; nothing was written" in stderr
    assert sorted(p.name for p in out.iterdir()) == previous
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "photo one.jpg", "striped.png"]


# --- pieces ----------------------------------------------------------------------------------------------


def test_probabilities_are_kept_and_scores_are_softmaxed():
    probs = np.array([[0.2, 0.8], [1.0, 0.0]])
    np.testing.assert_array_equal(models.probabilities(probs), probs)
    logits = np.array([[0.0, np.log(3.0)]])
    np.testing.assert_allclose(models.probabilities(logits), [[0.25, 0.75]])
    np.testing.assert_allclose(models.probabilities(np.array([[0.9], [0.0]])), [[0.1, 0.9], [1.0, 0.0]])
    with pytest.raises(ValueError, match="one column must be a sigmoid probability in"):
        models.probabilities(np.array([[0.5], [3.0]]))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        models.probabilities(np.zeros(3))


@pytest.mark.parametrize("name, expected", [
    ("none", [0.0, 127.5, 255.0]), ("unit", [0.0, 0.5, 1.0]), ("tf", [-1.0, 0.0, 1.0]),
    ("lite", [-127 / 128, 0.5 / 128, 1.0]),
])
def test_preprocessing(name, expected):
    np.testing.assert_allclose(models.PREPROCESSING[name](np.array([0.0, 127.5, 255.0])), expected)


def test_imagenet_preprocessing_uses_the_imagenet_mean_and_std():
    pixel = np.array([[[[0.485 * 255, 0.456 * 255, 0.406 * 255]]]])
    np.testing.assert_allclose(models.PREPROCESSING["imagenet"](pixel), 0.0, atol=1e-6)
    np.testing.assert_allclose(models.PREPROCESSING["torch"](pixel + 0.229 * 255)[..., 0], 1.0, atol=1e-6)


def test_methods_and_input_size_parsing():
    assert cli.parse_methods("GradCAM, anchor,gradcam") == ["gradcam", "anchor"]
    assert cli.parse_input_size("64,48") == (64, 48)
    assert cli.parse_input_size("64x48") == (64, 48)
    with pytest.raises(cli.InputError, match="--method"):
        cli.parse_methods(",")
    with pytest.raises(cli.InputError, match="--input-size"):
        cli.parse_input_size("0,4")


def test_help_and_version(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("imgexplain ")
    assert cli.main(["explain", "--help"]) == 0
    assert "--preprocess" in capsys.readouterr().out
