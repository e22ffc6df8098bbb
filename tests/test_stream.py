"""A stream at the model's speed: batched CAMs equal to one image at a time, the prediction from the CAM's own
forward pass, decoding errors in place, rows written in parts behind their pictures, progress as log lines."""
import io
import threading
import time

import numpy as np
import pytest

from tiny_classifier import SIZE, tiny_classifier

from imgexplain import stream
from imgexplain.classes import numbered_classes
from imgexplain.tasks import Task
from imgexplain.explainers import ImageExplainer, encoded
from imgexplain.models import Classifier
from imgexplain.progress import LogProgress

torch = pytest.importorskip("torch")


def images(n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (SIZE, SIZE, 3)).astype(np.float32) for _ in range(n)]  # as decoded


def explain_batch(explainer, pixels):
    """The explainer's rows for a batch of arrays, each loaded as the stream loads it."""
    return explainer.explain_batch([explainer.load(image) for image in pixels])


@pytest.mark.parametrize("methods", [["gradcam"], ["gradcam++", "scorecam"], ["fullgrad", "layercam"]])
def test_a_batch_gives_the_rows_of_its_images_one_at_a_time(methods):
    explainer = ImageExplainer(tiny_classifier, methods)
    batch = explain_batch(explainer, images(5))
    for image, row in zip(images(5), batch):
        alone = explainer.explain(image)
        assert (row["predicted"], row["target"]) == (alone["predicted"], alone["target"])
        assert [top["index"] for top in row["top5"]] == [top["index"] for top in alone["top5"]]
        for method in methods:
            np.testing.assert_allclose(row[method], alone[method], atol=1e-5)
        assert encoded(row)["files"] == alone["files"]


def test_the_prediction_comes_from_the_cam_s_forward_pass_without_another_model_call():
    calls = []
    rows = explain_batch(ImageExplainer(lambda: tiny_classifier(calls), ["gradcam"]), images(4))
    assert calls == []
    expected = tiny_classifier().predictor(np.stack(images(4)))
    for row, probs in zip(rows, expected):
        assert row["predicted"] == int(np.argmax(probs))
        np.testing.assert_allclose([top["p"] for top in row["top5"]], np.sort(probs)[::-1], atol=1e-6)


def test_a_fixed_target_is_explained_and_the_prediction_still_reported():
    rows = explain_batch(ImageExplainer(tiny_classifier, ["gradcam"], target=2), images(3))
    predicted = tiny_classifier().predictor(np.stack(images(3))).argmax(axis=1)
    assert [row["target"] for row in rows] == [2, 2, 2]
    assert [row["predicted"] for row in rows] == list(predicted)


def test_without_a_gradient_method_the_predictor_is_called_once_per_batch():
    calls = []
    explain_batch(ImageExplainer(lambda: tiny_classifier(calls), ["scorecam"]), images(3))
    assert calls == [3]


@pytest.mark.parametrize("pictures, suffix", [("png", ".png"), ("jpeg", ".jpg"), ("none", None)])
def test_pictures_are_deferred_and_come_in_the_format_asked(pictures, suffix):
    row = explain_batch(ImageExplainer(tiny_classifier, ["gradcam"], pictures=pictures), images(1))[0]
    if suffix is None:
        assert row["files"] == {} and row["pictures"] == []
        return
    assert all(callable(draw) for draw in row["files"].values())
    files = encoded(row)["files"]
    assert {path[-4:] for path in files} == {suffix}
    magic = b"\x89PNG" if pictures == "png" else b"\xff\xd8\xff"
    assert all(data.startswith(magic) for data in files.values())


def test_by_default_photographs_and_heatmaps_are_jpeg_drawings_and_enlarged_small_images_png():
    photo = np.random.default_rng(1).integers(0, 256, (300, 240, 3)).astype(np.float32)  # shown smaller
    photo_row, small_row = explain_batch(ImageExplainer(tiny_classifier, ["anchor", "gradcam"]),
                                         [photo, images(1)[0]])
    kinds = {path.rsplit("-", 1)[1] for path in photo_row["files"]}
    assert kinds == {"input.jpg", "gradcam.jpg", "anchor.png", "superpixels.png"}
    assert {path.rsplit("-", 1)[1] for path in small_row["files"]} == {kind.replace("jpg", "png") for kind in kinds}
    for path, data in encoded(photo_row)["files"].items():
        assert data.startswith(b"\xff\xd8\xff" if path.endswith(".jpg") else b"\x89PNG")


def test_an_image_that_cannot_be_read_is_an_error_in_its_place_and_the_batch_goes_on(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    sources = [images(1)[0], str(broken), images(2)[1]]
    tasks = [Task(k, source) for k, source in enumerate(sources)]
    results = list(stream.run_batched(lambda: ImageExplainer(tiny_classifier, ["gradcam"]), tasks, {},
                                      batch_size=3))
    assert [result.index for result in results] == [1, 0, 2]  # the broken one fails at once
    assert [result.status for result in results] == ["error", "ok", "ok"]


def test_the_batch_size_is_the_fastest_per_image_of_those_timed():
    sizer = stream.BatchSizer(sizes=(1, 2, 4), runs=2)
    for size, seconds in [(1, 0.05), (1, 0.03), (2, 0.05), (2, 0.05), (4, 0.2), (4, 0.2)]:
        assert sizer.next_size() == size
        sizer.record(size, seconds)
    assert sizer.chosen == 2 and sizer.next_size() == 2  # 25 ms an image, against 30 and 50


class RecordingTable:
    def __init__(self):
        self.parts = []

    def append(self, rows):
        self.parts.append([row["image"] for row in rows])


class Folder:
    def __init__(self, path):
        self.path = path


def test_rows_are_appended_in_parts_of_at_most_n_rows_each_after_its_pictures(tmp_path):
    table = RecordingTable()
    writer = stream.RowWriter(table, Folder(tmp_path), rows=3, seconds=60)
    for k in range(7):
        writer.add({"image": k}, {f"pictures/{k}.png": lambda k=k: bytes([k])})
        assert all((tmp_path / f"pictures/{j}.png").read_bytes() == bytes([j]) for part in table.parts for j in part)
    assert table.parts == [[0, 1, 2], [3, 4, 5]]
    writer.close()
    assert table.parts[-1] == [6]


def test_a_row_waits_no_longer_than_the_time_limit_and_never_before_its_pictures(tmp_path):
    table, drawn = RecordingTable(), threading.Event()
    writer = stream.RowWriter(table, Folder(tmp_path), rows=100, seconds=0.2)
    try:
        writer.add({"image": "slow"}, {"pictures/slow.png": lambda: drawn.wait(30) and b"slow"})
        time.sleep(0.6)
        assert table.parts == []  # its picture is not written yet
        drawn.set()
        deadline = time.monotonic() + 10
        while not table.parts and time.monotonic() < deadline:
            time.sleep(0.05)
        assert table.parts == [["slow"]] and (tmp_path / "pictures/slow.png").read_bytes() == b"slow"
    finally:
        drawn.set()
        writer.close()


def test_after_a_failure_the_rows_waiting_are_not_written(tmp_path):
    table = RecordingTable()
    writer = stream.RowWriter(table, Folder(tmp_path), rows=10, seconds=60)
    writer.add({"image": 0}, {})
    writer.close(flush=False)
    assert table.parts == []


def test_progress_without_a_terminal_is_a_line_with_the_count_rate_and_eta():
    log = io.StringIO()
    progress = LogProgress(10, "explaining", "image", log, every=0)
    progress.update(4)
    progress.set_postfix_str("anchor round 3")
    progress.update(1)
    progress.close()
    lines = log.getvalue().splitlines()
    assert lines[0].startswith("explaining: 4/10 images (40 %), ") and ", ETA " in lines[0]
    assert lines[1].startswith("explaining: 4/10 images (40 %)") and lines[1].endswith("anchor round 3")
    assert lines[2].startswith("explaining: 5/10 images (50 %)") and lines[2].endswith("anchor round 3")


@pytest.mark.parametrize("pictures", ["none", "jpeg"])
def test_the_command_writes_the_pictures_asked_for_and_its_report(tmp_path, pictures, capsys):
    from PIL import Image

    from imgexplain import cli

    model = tmp_path / "tiny.pt2"
    exported = tiny_classifier().model
    torch.export.save(torch.export.export(exported, (torch.zeros(1, 3, SIZE, SIZE),)), str(model))
    folder = tmp_path / "photos"
    folder.mkdir()
    for k, image in enumerate(images(5)):
        Image.fromarray(image.astype(np.uint8)).save(folder / f"{k}.png")
    out = tmp_path / "out"
    assert cli.main(["explain", str(folder), "--model", str(model), "--method", "gradcam", "--pictures", pictures,
                     "--out", str(out)]) == 0
    written = sorted(path.suffix for path in (out / "pictures").glob("*")) if (out / "pictures").exists() else []
    assert written == ([] if pictures == "none" else [".jpg"] * 10)  # the input and the overlay of each image
    assert (out / "report.html").exists() and "5 explained" in capsys.readouterr().err


def test_the_anchor_search_s_rounds_reach_the_progress_display():
    from imgexplain.anchors.image import PROGRESS_LOGGER

    def textured_corner(images):  # class 1 when the top-left quadrant is textured (a perturbation flattens it)
        corner = np.asarray(images)[:, :SIZE // 2, :SIZE // 2].std(axis=(1, 2, 3)) > 30
        return np.stack([1.0 - corner, corner.astype(float)], axis=1)

    classifier = Classifier(name="corner", framework="none", model=None, input_size=(SIZE, SIZE),
                            preprocess=lambda images: images, predictor=textured_corner, top_classes=numbered_classes)
    image = np.zeros((SIZE, SIZE, 3), np.float32)
    image[:SIZE // 2, :SIZE // 2] = np.random.default_rng(0).integers(0, 256, (SIZE // 2, SIZE // 2, 3))
    lines = []
    explainer = ImageExplainer(lambda: classifier, ["anchor"])
    explainer.report_progress = lines.append
    row = explainer.explain(image)
    assert row["anchor"] and lines and all(line.startswith(("anchor size ", "anchor verification ")) for line in lines)
    assert f"size {len(row['anchor'])}: " in " ".join(lines)
    assert not PROGRESS_LOGGER.handlers  # the forwarding handler is removed
