"""The `imgexplain` command end to end, on small models saved by the tests and small image files."""
import json
import os
import re
import signal
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgexplain import classes, cli, explainers, models, render
from imgexplain.predictor import PredictorError
from stripes import SIZE, stripe_detector, striped_image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# TorchScript is one of the files the command reads; torch 2.13 marks its functions deprecated.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")



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


def _stripe_energy(pixels):
    """What the TorchScript test model measures: mean horizontal change in the top-left quadrant."""
    half = SIZE // 2
    quadrant = pixels[:half, :half].astype(np.float64) / 255
    return np.abs(np.diff(quadrant, axis=1)).sum(axis=2).mean()


@pytest.fixture(scope="module")
def torchscript_model(tmp_path_factory):
    """A TorchScript model of class 1 when the top-left quadrant is striped, class 0 when it is flat."""
    import torch

    path = tmp_path_factory.mktemp("models") / "stripes.pt"
    torch.jit.save(torch.jit.trace(stripe_detector(), torch.zeros(1, 3, SIZE, SIZE)), str(path))
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
    Image.fromarray(striped_image()).save(striped)
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


def _table(out):
    import pandas as pd

    return pd.read_parquet(out / "results.parquet").sort_values("image").reset_index(drop=True)


def _row(out, path):
    table = _table(out)
    (index,) = np.flatnonzero(table.image == str(path.absolute()))
    return table.iloc[index]


def _unchanged_user_files(folder):
    return {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def test_explain_with_a_torchscript_model_writes_table_pictures_and_report(torchscript_model, images, tmp_path, capsys):
    out = tmp_path / "out"
    status, stdout, stderr = _run(_torchscript_argv(torchscript_model, images, out), capsys)
    assert status == 0, stderr
    assert stdout.strip() == str(out / "report.html")
    linked = _linked_pictures(out / "report.html")
    assert sorted(linked) == sorted(f"pictures/{p.name}" for p in (out / "pictures").glob("*.png"))
    assert len(linked) == 6
    for name in linked:  # small inputs are enlarged (7 x 32 = 224), at the input's aspect ratio (60 x 45)
        expected_size = (7 * SIZE, 7 * SIZE) if "striped-" in name else (259, 194)
        assert Image.open(out / name).size == expected_size
    assert all(name.startswith(("pictures/striped-", "pictures/photo-one-")) for name in linked)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "photo one.jpg", "striped.png"]

    striped = _row(out, images[0])
    energy = _stripe_energy(striped_image())
    expected = 1 / (1 + np.exp(-8 * (energy - 1)))  # softmax of the two logits, taken by the command
    assert striped.status == "ok" and striped.target == 1 and striped.label == "class 1"
    assert [top["index"] for top in striped.top5] == [1, 0]
    assert striped.top5[0]["p"] == pytest.approx(expected, rel=1e-5)
    assert striped.num_preds > 0 and striped.seconds_anchor > 0

    # The anchor keeps stripes: every superpixel in it lies mostly in the striped quadrant.
    assert striped.precision >= 0.95
    (anchor_picture,) = [p for p in linked if p.endswith("-anchor.png") and p.split("/")[1][:16] in
                         [q["path"].split("/")[1][:16] for q in striped.pictures]]
    anchor = np.asarray(Image.open(out / anchor_picture))[::7, ::7]
    kept = np.all(anchor == striped_image(), axis=2)
    half = SIZE // 2
    assert kept[:half, :half].mean() > 0.3
    assert kept[half:, :].sum() + kept[:half, half:].sum() < kept[:half, :half].sum()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ok"] == 2 and summary["errors"] == 0
    assert isinstance(summary["precision"]["median"], float)
    page = (out / "report.html").read_text()
    assert "superpixel ids in the anchor" in page and "#" + str(striped.anchor[0]) in page


def test_explain_with_a_keras_model_draws_heatmaps(keras_model, images, tmp_path, capsys):
    out = tmp_path / "out"
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\n\nbird\n")
    status, _, stderr = _run(["explain", images[1], "--model", keras_model, "--preprocess", "unit", "--labels",
                              labels, "--method", "gradcam,gradcam++", "--target", "2", "--out", out], capsys)
    assert status == 0, stderr
    row = _row(out, images[1])
    assert row.target == 2 and row.label == "bird"
    assert {top["label"] for top in row.top5} == {"cat", "dog", "bird"}
    assert row.anchor is None and np.isnan(row.precision)
    assert np.stack(row.gradcam).shape == (SIZE, SIZE)
    assert row.layer == "features"
    assert [p["title"] for p in row.pictures] == ["input", "gradcam", "gradcam++"]
    original = np.asarray(Image.open(out / row.pictures[0]["path"]))
    for picture in row.pictures[1:]:
        overlay = np.asarray(Image.open(out / picture["path"]))
        assert overlay.shape == original.shape
        assert not np.array_equal(overlay[:, :, :3], original)
    assert "colorbar" in (out / "report.html").read_text()


def test_heatmaps_explain_the_target_and_match_cam_on_the_net(exported_model, images, tmp_path, capsys):
    from imgexplain import CAM

    path, net = exported_model
    image = np.asarray(Image.open(images[1]).convert("RGB").resize((SIZE, SIZE), Image.BILINEAR))
    pixels = models.PREPROCESSING["tf"](image.astype(np.float32)).transpose(2, 0, 1)[np.newaxis]
    import torch

    with torch.no_grad():
        predicted = int(net(torch.from_numpy(pixels.astype(np.float32))).argmax())
    other = (predicted + 1) % 3
    maps = {}
    for target in (None, other):
        out = tmp_path / f"out{target}"
        extra = [] if target is None else ["--target", str(target)]
        status, _, stderr = _run(["explain", images[1], "--model", path, "--preprocess", "tf",
                                  "--method", "gradcam", "--out", out, *extra], capsys)
        assert status == 0, stderr
        row = _row(out, images[1])
        assert row.target == (predicted if target is None else target)
        maps[target] = np.stack(row.gradcam)
    np.testing.assert_allclose(maps[None], CAM(net)(pixels, targets=[predicted])[0], atol=1e-5)
    np.testing.assert_allclose(maps[other], CAM(net)(pixels, targets=[other])[0], atol=1e-5)
    assert not np.allclose(maps[None], maps[other], atol=1e-2)


@pytest.mark.slow
def test_anchors_on_ray_workers_are_those_found_in_this_process(torchscript_model, images, tmp_path, capsys):
    pytest.importorskip("ray")
    tables = []
    for workers in ("0", "2"):
        out = tmp_path / f"out{workers}"
        status, _, stderr = _run(_torchscript_argv(torchscript_model, images, out, "--workers", workers), capsys)
        assert status == 0, stderr
        table = _table(out)
        tables.append((list(table.image), [list(anchor) for anchor in table.anchor], list(table.precision),
                       list(table.coverage)))
    assert tables[0] == tables[1]


def test_a_second_run_resumes_and_keeps_the_user_s_files(torchscript_model, images, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    mine = out / "my photo.png"
    mine.write_bytes(images[0].read_bytes())
    assert _run(_torchscript_argv(torchscript_model, images[1:], out), capsys)[0] == 0
    first_report = (out / "report.html").read_text()
    assert _run(_torchscript_argv(torchscript_model, [out, *images], out), capsys)[0] == 0
    table = _table(out)
    assert sorted(table.image) == sorted(str(p.absolute()) for p in (mine, *images))  # only the user's image in OUT
    assert (out / "notes.txt").read_text() == "mine" and mine.read_bytes() == images[0].read_bytes()
    assert (out / "report.html").read_text() != first_report
    assert not list(out.rglob(".imgexplain-*"))
    stat = (out / "pictures").stat().st_mode & 0o777
    assert stat == 0o777 & ~_umask()


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_folder_with_subfolders_a_corrupt_file_and_a_text_file_named_jpg(torchscript_model, images, tmp_path,
                                                                          capsys):
    folder = tmp_path / "photos"
    (folder / "deeper" / "deepest").mkdir(parents=True)
    Image.fromarray(striped_image()).save(folder / "deeper" / "deepest" / "cat.png")
    (folder / "deeper" / "fake.jpg").write_text("not an image")
    (folder / "corrupt.png").write_bytes(images[0].read_bytes()[:60])
    (folder / "readme.md").write_text("not an image, not an image name: skipped")
    out = tmp_path / "out"
    status, _, stderr = _run(_torchscript_argv(torchscript_model, [folder], out), capsys)
    assert status == 0, stderr
    table = _table(out)
    assert [Path(name).relative_to(folder).as_posix() for name in table.image] == [
        "corrupt.png", "deeper/deepest/cat.png", "deeper/fake.jpg"]
    assert list(table.status) == ["error", "ok", "error"]
    assert list(table.error_type.fillna("-")) == ["OSError", "-", "UnidentifiedImageError"]
    assert "errors" in (out / "report.html").read_text()
    assert _run(_torchscript_argv(torchscript_model, [folder], out), capsys)[0] == 0
    assert len(_table(out)) == 3


@pytest.mark.slow
def test_a_run_killed_part_way_resumes_with_one_row_per_image_and_the_same_anchors(torchscript_model, tmp_path,
                                                                                  capsys):
    import subprocess
    import sys
    import time

    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for k in range(8):
        image = striped_image()
        image[SIZE // 2:] = rng.integers(0, 256, size=3)
        Image.fromarray(image).save(folder / f"{k}.png")
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert _run(_torchscript_argv(torchscript_model, [folder], whole), capsys)[0] == 0
    argv = [str(arg) for arg in _torchscript_argv(torchscript_model, [folder], killed)]
    one_row_parts = "import imgexplain.stream; imgexplain.stream.ROWS_PER_PART = 1"  # a kill between rows
    code = f"{one_row_parts}; from imgexplain import cli; cli.main({argv!r})"
    process = subprocess.Popen([sys.executable, "-c", code],
                               start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parts = killed / "results.parquet"
    while process.poll() is None and len(list(parts.glob("part-*"))) < 3:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert 3 <= len(list(parts.glob("part-*"))) < 8
    assert _run(_torchscript_argv(torchscript_model, [folder], killed), capsys)[0] == 0
    resumed, uninterrupted = _table(killed), _table(whole)
    assert list(resumed.image) == list(uninterrupted.image)  # one row per image, none twice
    assert [list(a) for a in resumed.anchor] == [list(a) for a in uninterrupted.anchor]
    assert list(resumed.precision) == list(uninterrupted.precision)
    assert not list(killed.rglob(".imgexplain-*"))


def test_changed_arguments_are_refused_not_mixed(torchscript_model, images, tmp_path, capsys):
    out = tmp_path / "out"
    assert _run(_torchscript_argv(torchscript_model, images[:1], out), capsys)[0] == 0
    before = _unchanged_user_files(out)
    status, _, stderr = _run(_torchscript_argv(torchscript_model, images, out, "--seed", "3"), capsys)
    assert status == 2
    assert "holds results of other arguments (seed 0 -> 3)" in stderr
    assert _unchanged_user_files(out) == before


def test_demo_explains_the_sample_photographs(keras_model, tmp_path, capsys, monkeypatch):
    """The demo's wiring, with the small Keras model standing in for the built-in one."""
    small = models.load_saved_model(str(keras_model), "keras", None, "unit")
    monkeypatch.setattr(models, "load_builtin", lambda framework, device=None: small)
    out = tmp_path / "demo"
    status, stdout, stderr = _run(["demo", "--out", out], capsys)
    assert status == 0, stderr
    assert stdout.strip() == str(out / "report.html")
    assert sorted(_table(out).image) == sorted(cli.DEMO_SAMPLES)
    assert len(_linked_pictures(out / "report.html")) == 4 * len(cli.DEMO_SAMPLES)  # input, anchor, superpixels, gradcam


@pytest.mark.slow
def test_explain_with_the_builtin_model(tmp_path, capsys):
    from imgexplain import datasets

    chelsea = tmp_path / "chelsea.png"
    Image.fromarray(datasets.load_samples(target_size=None, names=["chelsea"])["chelsea"]).save(chelsea)
    out = tmp_path / "out"
    status, _, stderr = _run(["explain", chelsea, "--method", "gradcam", "--out", out], capsys)
    assert status == 0, stderr
    row = _row(out, chelsea)
    assert (row.target, row.label) == (285, "Egyptian_cat")
    assert row.top5[0]["p"] == pytest.approx(0.79, abs=0.02)
    assert "head activation" in row.pictures[1]["caption"]


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
    (foreign / "report.html").write_text("my own report")
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\n")
    ts = ["--model", torchscript_model, "--input-size", f"{SIZE},{SIZE}", "--method", "anchor"]
    return {
        "missing image": (["explain", tmp_path / "nope.png", *ts], "no such image file or folder: .*nope.png"),
        "not an image": (["explain", text, *ts], "not an image \\(Pillow cannot read it\\): .*notes.png"),
        "unknown method": (["explain", images[0], "--method", "anchor,lime"],
                           "--method: unknown method 'lime' \\(choose among anchor, gradcam"),
        "unknown model": (["explain", images[0], "--model", "resnet50"], "--model: unknown model 'resnet50'"),
        "model not a model": (["explain", images[0], "--model", images[0]], "striped.png' is not a model file"),
        "fixed batch": (["explain", images[0], "--model", batch_of_two], "exported for batches of exactly 2 images"),
        "no input size": (["explain", images[0], "--model", torchscript_model, "--method", "anchor"],
                          "--input-size H,W is needed for a TorchScript model"),
        "bad input size": (["explain", images[0], "--model", torchscript_model, "--input-size", "32"],
                           "--input-size: expected H,W"),
        "cam on torchscript": (["explain", images[0], *ts, "--method", "anchor,gradcam"],
                               "--method gradcam: class activation maps need the model's layers"),
        "threshold": (["explain", images[0], "--threshold", "1.5"], "--threshold: threshold must be a number in \\[0, 1\\]"),
        "negative workers": (["explain", images[0], "--workers", "-1"], "--workers: expected a number of workers >= 0"),
        "negative target": (["explain", images[0], "--target", "-1"], "--target: expected a class index >= 0"),
        "target too large": (["explain", images[0], *ts, "--target", "2"],
                             "--target: 2 is not a class of stripes.pt, which has 2 classes"),
        "preprocess builtin": (["explain", images[0], "--preprocess", "unit"],
                               "--preprocess applies to your own saved model"),
        "framework mismatch": (["explain", images[0], *ts, "--framework", "keras"],
                               "--framework keras: .*stripes.pt' is a TorchScript file, a torch.nn.Module"),
        "model fails": (["explain", images[0], "--model", linear_model, "--input-size", "16,16",
                         "--method", "anchor"], "--model: linear.pt failed on an input of 16x16 pixels .*: RuntimeError"),
        "model returns NaN": (["explain", images[0], "--model", torchscript_model, "--input-size", "1,1",
                               "--method", "anchor"], "--model: stripes.pt returned NaN or infinite values"),
        "foreign out": (["explain", images[0], *ts, "--out", foreign],
                        "--out: .*report.html' was not written by imgexplain and would be overwritten"),
        "negative seed": (["explain", images[0], *ts, "--seed", "-1"], "--seed: expected an integer in \\[0, 2\\*\\*32 - 1\\]"),
        "timeout in process": (["explain", images[0], *ts, "--timeout", "5"], "--timeout needs --workers 1 or more"),
        "max pixels": (["explain", images[0], *ts, "--max-pixels", "100"],
                       "striped.png is 32x32 = 1,024 pixels, more than max_pixels = 100; raise the limit \\(--max-pixels"),
        "labels count": (["explain", images[0], *ts, "--labels", labels], "--labels: 1 labels for stripes.pt, which has 2"),
        "labels missing": (["explain", images[0], *ts, "--labels", tmp_path / "no.txt"],
                           "--labels: cannot read the labels file"),
        "out under a file": (["explain", images[0], *ts, "--out", images[0] / "out"],
                             "--out: cannot create .*striped.png' is a file, not a folder"),
        "unknown option": (["explain", images[0], "--colour", "red"], "unrecognized arguments: --colour red"),
        "no command": ([], "the following arguments are required: COMMAND"),
    }


@pytest.mark.parametrize("case", [
    "missing image", "not an image", "unknown method", "unknown model", "negative seed", "timeout in process",
    "max pixels", "labels count", "labels missing",
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


@pytest.mark.parametrize("signum, status, said", [(signal.SIGTERM, 143, "terminated"),
                                                   (signal.SIGINT, 130, "interrupted")])
def test_an_interrupted_run_reports_the_rows_so_far_and_resumes(torchscript_model, images, tmp_path, capsys,
                                                                monkeypatch, signum, status, said):
    out = tmp_path / "out"
    assert _run(_torchscript_argv(torchscript_model, images[:1], out), capsys)[0] == 0
    original, calls = explainers.ImageExplainer._explain_anchor, []

    def interrupted_on_the_second_image(*args):
        calls.append(args)
        if len(calls) == 2:
            os.kill(os.getpid(), signum)
        return original(*args)

    more = tmp_path / "more.png"
    more.write_bytes(images[0].read_bytes()[:-1] + b"\0")  # another file, the same picture
    monkeypatch.setattr(explainers.ImageExplainer, "_explain_anchor", interrupted_on_the_second_image)
    returned, stdout, stderr = _run(_torchscript_argv(torchscript_model, [images[0], images[1], more], out), capsys)
    assert returned == status and stdout == ""
    assert stderr.splitlines()[-1].startswith(f"imgexplain: {said}; the rows written so far are kept")
    assert "Traceback" not in stderr
    assert len(_table(out)) == 2 and not list(out.rglob(".imgexplain-tmp-*"))
    assert json.loads((out / "summary.json").read_text())["images"] == 2  # the report of the rows so far
    monkeypatch.setattr(explainers.ImageExplainer, "_explain_anchor", original)
    assert _run(_torchscript_argv(torchscript_model, [images[0], images[1], more], out), capsys)[0] == 0
    assert sorted(_table(out).image) == sorted(str(p.absolute()) for p in (images[0], images[1], more))


def test_an_out_folder_without_write_permission_is_refused(images, tmp_path, capsys, monkeypatch):
    from imgexplain import results

    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setattr(results.os, "access", lambda path, mode: False)  # tests run as root, which may write anywhere
    status, _, stderr = _run(["explain", images[0], "--out", out], capsys)
    assert status == 2
    assert stderr == f"imgexplain: error: --out: no permission to write in {str(out)!r}\n"


def test_a_full_disk_is_one_line_and_status_1(torchscript_model, images, tmp_path, capsys, monkeypatch):
    import errno

    from imgexplain import results

    original = results.atomic_write

    def full(path, data):
        if "results.parquet" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device")
        original(path, data)

    monkeypatch.setattr(results, "atomic_write", full)
    out = tmp_path / "out"
    status, _, stderr = _run(_torchscript_argv(torchscript_model, images, out), capsys)
    assert status == 1
    assert stderr.splitlines()[-1] == "imgexplain: error: the run failed: [Errno 28] No space left on device"
    assert not list(out.rglob(".imgexplain-*"))


def test_a_fake_keras_file_is_one_line_without_tensorflow_logs(images, tmp_path, capfd):
    import zipfile

    fake = tmp_path / "model.keras"
    with zipfile.ZipFile(fake, "w") as archive:
        archive.writestr("config.json", "{not json")
    status = cli.main(["explain", str(images[0]), "--model", str(fake), "--out", str(tmp_path / "out")])
    captured = capfd.readouterr()
    assert status == 2
    assert captured.err.splitlines() == [captured.err.splitlines()[0]]
    assert captured.err.startswith("imgexplain: error: --model: cannot load")


def test_a_one_output_sigmoid_model_is_explained_as_two_classes(images, tmp_path, capsys):
    import torch

    from imgexplain import CAM

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(4, 1), torch.nn.Sigmoid()).eval()
    path = tmp_path / "sigmoid.pt2"
    torch.export.save(torch.export.export(net, (torch.zeros(1, 3, SIZE, SIZE),)), path)
    out = tmp_path / "out"
    status, _, stderr = _run(["explain", images[1], "--model", path, "--preprocess", "unit", "--out", out,
                              "--target", "1"], capsys)
    assert status == 0, stderr
    row = _row(out, images[1])
    assert row.status == "ok" and row.target == 1 and row.anchor is not None
    image = np.asarray(Image.open(images[1]).convert("RGB").resize((SIZE, SIZE), Image.BILINEAR))
    pixels = (image.astype(np.float32) / 255).transpose(2, 0, 1)[np.newaxis]
    np.testing.assert_allclose(np.stack(row.gradcam), CAM(net)(pixels, targets=[1])[0], atol=1e-5)


def test_a_grey_input_keras_model_gets_the_luminance(images, tmp_path, capsys):
    import keras

    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(2, 3, activation="relu"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, activation="softmax")])
    path = tmp_path / "grey.keras"
    model.save(path)
    out = tmp_path / "out"
    status, _, stderr = _run(["explain", images[1], "--model", path, "--method", "gradcam", "--out", out], capsys)
    assert status == 0, stderr
    row = _row(out, images[1])
    image = np.asarray(Image.open(images[1]).convert("RGB").resize((28, 28), Image.BILINEAR)).astype(np.float32)
    grey = image @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    expected = model.predict(grey[np.newaxis, :, :, np.newaxis], verbose=0)[0]
    assert row.top5[0]["p"] == pytest.approx(expected.max(), rel=1e-5)


# --- pieces ----------------------------------------------------------------------------------------------


def test_probabilities_are_kept_and_scores_are_softmaxed():
    probs = np.array([[0.2, 0.8], [1.0, 0.0]])
    np.testing.assert_array_equal(classes.probabilities(probs), probs)
    logits = np.array([[0.0, np.log(3.0)]])
    np.testing.assert_allclose(classes.probabilities(logits), [[0.25, 0.75]])
    np.testing.assert_allclose(classes.probabilities(np.array([[0.9], [0.0]])), [[0.1, 0.9], [1.0, 0.0]])
    with pytest.raises(PredictorError, match="one column must be a sigmoid probability in"):
        classes.probabilities(np.array([[0.5], [3.0]]))
    with pytest.raises(PredictorError, match=r"shape \(3,\)"):
        classes.probabilities(np.zeros(3))


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
