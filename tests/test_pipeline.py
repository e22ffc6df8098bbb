"""explain_many and explain_dataset: the same explanations in this process or on Ray workers; faults; bad input."""
import functools
import json
import os
import signal
import sys
import threading
import time

import numpy as np
import pytest

from imgexplain import AnchorImage, PredictorError, stream
from imgexplain.distributed import WorkerError
from imgexplain.pipeline import explain_dataset, explain_many
from imgexplain.schema import table_schema
from imgexplain.segmentation import grid_segments

SHAPE = (24, 24, 3)
CELL = (8, 8)
SEGMENTS = grid_segments(SHAPE[:2], CELL)


def image_textured_in(cells, seed):
    """Flat grey cells, except ``cells``, which hold noise: only those change when replaced by their mean."""
    image = np.full(SHAPE, 128.0, dtype=np.float32)
    noise = np.random.default_rng(seed).uniform(0, 255, SHAPE).astype(np.float32)
    textured = np.isin(SEGMENTS, cells)
    image[textured] = noise[textured]
    return image


def two_textured_cells(images):
    """Class 1 iff at least two cells still hold texture: the anchor is exactly the image's textured cells."""
    cells = SEGMENTS.ravel()
    spread = np.stack([np.bincount(cells, weights=image[..., 0].ravel() ** 2) / np.bincount(cells)
                       - (np.bincount(cells, weights=image[..., 0].ravel()) / np.bincount(cells)) ** 2
                       for image in images])
    return (np.sum(spread > 1.0, axis=1) >= 2).astype(np.int64)


def failing_predictor(images):
    """Answers the constructor's probe and the image's own prediction (one image each), then fails."""
    if len(images) > 1:
        raise OSError("the model server is down")
    return np.zeros(len(images), np.int64)


def grid(image):
    return SEGMENTS


def make_explainer(predictor=two_textured_cells):
    return functools.partial(AnchorImage, predictor, SHAPE, segmentation_fn=grid, seed=0)


ANCHORS = [[0, 4], [2, 6], [1, 8], [3, 5]]
IMAGES = [image_textured_in(cells, seed) for seed, cells in enumerate(ANCHORS)]


def send_this_module_by_value():
    """Ray workers cannot import this test file: pickle its functions by value, as for a script."""
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])


def summary(explanation):
    return sorted(explanation.raw["feature"]), explanation.precision, explanation.coverage


def test_in_this_process_each_image_gets_its_own_anchor():
    explanations = explain_many(make_explainer(), IMAGES, n_workers=0, progress=False, batch_size=50)
    assert [sorted(e.raw["feature"]) for e in explanations] == ANCHORS
    assert all(e.precision == 1.0 for e in explanations)
    assert all(e.meta["params"]["batch_size"] == 50 for e in explanations)


@pytest.mark.slow
def test_ray_workers_give_the_same_explanations_in_the_same_order():
    ray = pytest.importorskip("ray")
    send_this_module_by_value()
    here = explain_many(make_explainer(), np.stack(IMAGES), n_workers=0, progress=False, batch_size=50)
    on_ray = explain_many(make_explainer(), IMAGES, n_workers=2, progress=False, batch_size=50)
    assert [summary(e) for e in on_ray] == [summary(e) for e in here]
    assert [sorted(e.raw["feature"]) for e in on_ray] == ANCHORS
    assert not ray.is_initialized()  # started for the call, stopped after it


@pytest.mark.slow
def test_a_failing_predictor_on_a_worker_raises_its_error_here():
    pytest.importorskip("ray")
    send_this_module_by_value()
    with pytest.raises(PredictorError, match="raised OSError.*the model server is down") as raised:
        explain_many(make_explainer(failing_predictor), IMAGES[:2], n_workers=1, progress=False)
    assert "RayTaskError" not in str(raised.value) and "\x1b[" not in str(raised.value)
    assert raised.value.__notes__ == ["raised while explaining image 0"]


def broken_factory():
    raise FileNotFoundError("no such model file: resnet.pt")


@pytest.mark.slow
def test_an_explainer_that_cannot_be_built_on_a_worker_raises_its_error_here():
    pytest.importorskip("ray")
    send_this_module_by_value()
    with pytest.raises(FileNotFoundError, match="no such model file: resnet.pt"):
        explain_many(broken_factory, IMAGES[:1], n_workers=1, progress=False)


class FaultyExplainer:
    """Explains image k by its mean, except: SIGKILL of its own process, a sleep, an unpicklable error."""

    def explain(self, image):
        kind = int(image[0, 0, 0])
        if kind == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        if kind == 2:
            time.sleep(600)
        if kind == 3:
            error = ValueError("bad pixel")
            error.lock = threading.Lock()  # cannot be pickled
            raise error
        return float(image.mean())


STUCK_SECONDS = 5  # the timeout of the stuck image: a healthy image of FaultyExplainer takes microseconds


def _faulty_images():
    images = [np.full((2, 2, 3), 10.0 + k) for k in range(6)]
    for index, kind in ((1, 1), (3, 2), (4, 3)):
        images[index][0, 0, 0] = kind
    return images


@pytest.mark.slow
def test_a_killed_worker_and_a_stuck_image_are_that_image_s_errors_and_every_other_result_comes_back():
    ray = pytest.importorskip("ray")
    send_this_module_by_value()
    images = _faulty_images()
    results = explain_many(FaultyExplainer, images, n_workers=2, timeout=STUCK_SECONDS, errors="return",
                           progress=False)
    for index in (0, 2, 5):
        assert results[index] == pytest.approx(images[index].mean())
    assert isinstance(results[1], WorkerError) and "WorkerDiedError" in str(results[1])
    assert isinstance(results[3], TimeoutError) and f"no result after {STUCK_SECONDS} s" in str(results[3])
    assert isinstance(results[4], WorkerError) and str(results[4]) == "ValueError: bad pixel"
    assert not ray.is_initialized()


class RowExplainer(FaultyExplainer):
    def explain(self, image):
        return {"mean": super().explain(image)}


@pytest.mark.slow
def test_a_dataset_run_records_a_killed_worker_and_a_stuck_image_as_error_rows(tmp_path):
    import pandas as pd
    import pyarrow as pa

    pytest.importorskip("ray")
    send_this_module_by_value()
    images = [(f"image {k}", image) for k, image in enumerate(_faulty_images())]
    results = list(explain_dataset(images, RowExplainer, out=tmp_path, schema=pa.schema([("mean", pa.float64())]),
                                   n_workers=2, timeout=STUCK_SECONDS, progress=False))
    assert sorted(result.index for result in results) == list(range(6))
    table = pd.read_parquet(tmp_path / "results.parquet").sort_values("index")
    assert list(table.status) == ["ok", "error", "ok", "error", "error", "ok"]
    assert list(table.error_type.fillna("-")) == ["-", "WorkerDiedError", "-", "TimeoutError", "ValueError", "-"]
    np.testing.assert_allclose(table["mean"].iloc[[0, 2, 5]], [images[k][1].mean() for k in (0, 2, 5)])


def test_in_this_process_errors_are_returned_in_place_or_raised_with_the_image_index():
    images = [np.full((2, 2, 3), 10.0), np.full((2, 2, 3), 3.0)]
    images[1][0, 0, 0] = 3
    results = explain_many(FaultyExplainer, images, n_workers=0, errors="return", progress=False)
    assert results[0] == 10.0 and type(results[1]) is ValueError and str(results[1]) == "bad pixel"
    with pytest.raises(ValueError, match="bad pixel") as raised:
        explain_many(FaultyExplainer, images, n_workers=0, progress=False)
    assert raised.value.__notes__ == ["raised while explaining image 1"]


@pytest.mark.parametrize("arguments, error, message", [
    (dict(make_explainer="AnchorImage"), TypeError, "make_explainer must be a callable"),
    (dict(images=[]), ValueError, "images is empty"),
    (dict(images=np.zeros((4, 4))), ValueError, r"got an array of shape \(4, 4\)"),
    (dict(images="cat.png"), TypeError, "images must be a sequence of images"),
    (dict(n_workers=-1), ValueError, "n_workers must be None or an integer >= 0"),
    (dict(n_workers=1.5), TypeError, "n_workers must be None or an integer >= 0"),
    (dict(n_workers=True), TypeError, "n_workers must be None or an integer >= 0"),
    (dict(cpus_per_worker=0), ValueError, "cpus_per_worker must be a positive number"),
    (dict(cpus_per_worker="1"), TypeError, "cpus_per_worker must be a positive number"),
    (dict(timeout=0), ValueError, r"timeout \(seconds\) must be None or a positive number"),
    (dict(timeout="5"), TypeError, r"timeout \(seconds\) must be None or a positive number"),
    (dict(timeout=5, n_workers=0), ValueError, "timeout needs Ray workers"),
    (dict(errors="ignore"), ValueError, "errors must be 'raise' or 'return'"),
])
def test_bad_input_is_rejected_before_any_worker_starts(arguments, error, message):
    built = []

    def recording_factory():
        built.append(True)
        return make_explainer()()

    call = dict(make_explainer=recording_factory, images=IMAGES)
    call.update(arguments)
    with pytest.raises(error, match=message):
        explain_many(call.pop("make_explainer"), call.pop("images"), progress=False, **call)
    assert built == []


class MeanOrFailure:
    """The mean of an image, or an OSError for the images named in ``FAILING`` (a transient fault)."""

    def explain(self, image):
        if int(image[0, 0, 0]) in FAILING:
            raise OSError("the model server is down")
        return {"mean": float(image.mean())}


FAILING = set()


def _mean_run(images, out):
    import pyarrow as pa

    return list(explain_dataset(images, MeanOrFailure, out=out, schema=pa.schema([("mean", pa.float64())]),
                                arguments={"method": "mean"}, n_workers=0, progress=False))


def _mean_images(n):
    images = []
    for k in range(n):
        image = np.full((4, 4, 3), 10.0 * k + 1)
        image[0, 0, 0] = k
        images.append((f"image {k}", image))
    return images


class Interrupted:
    def explain(self, image):
        raise KeyboardInterrupt


def test_no_image_writes_nothing_and_the_table_s_folder_comes_with_its_first_row(tmp_path):
    import pandas as pd
    import pyarrow as pa

    out = tmp_path / "out"
    assert _mean_run([], out) == [] and not out.exists()  # a new OUT is not made for nothing
    out.mkdir()
    assert _mean_run([], out) == []
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C before the first row
        list(explain_dataset(_mean_images(1), Interrupted, out=out, schema=pa.schema([("mean", pa.float64())]),
                             arguments={"method": "mean"}, n_workers=0, progress=False))
    assert sorted(path.name for path in out.iterdir()) == [".imgexplain.lock", "imgexplain.json"]
    _mean_run(_mean_images(1), out)
    assert list(pd.read_parquet(out / "results.parquet").image) == ["image 0"]


def test_error_rows_are_explained_again_on_resume_and_replaced_by_the_new_row(tmp_path, monkeypatch):
    import pandas as pd

    images = _mean_images(4)
    monkeypatch.setattr(sys.modules[__name__], "FAILING", {1, 3})
    assert [result.status for result in _mean_run(images, tmp_path)] == ["ok", "error", "ok", "error"]
    monkeypatch.setattr(sys.modules[__name__], "FAILING", {3})
    again = _mean_run(images, tmp_path)
    assert [(result.image, result.status) for result in again] == [("image 1", "ok"), ("image 3", "error")]
    table = pd.read_parquet(tmp_path / "results.parquet").sort_values("index")
    assert list(table.image) == [name for name, _ in images]  # one row each: the error row was replaced
    assert list(table.status) == ["ok", "ok", "ok", "error"]
    monkeypatch.setattr(sys.modules[__name__], "FAILING", set())
    assert [result.image for result in _mean_run(images, tmp_path)] == ["image 3"]
    table = pd.read_parquet(tmp_path / "results.parquet").sort_values("index")
    assert list(table.status) == ["ok"] * 4
    np.testing.assert_allclose(table["mean"], [image.mean() for _, image in images])


def test_a_run_s_one_row_parts_are_merged_into_one_file_at_its_end(tmp_path, monkeypatch):
    import pandas as pd

    from imgexplain.results import ResultsTable

    monkeypatch.setattr(stream, "ROWS_PER_PART", 1)
    images = _mean_images(40)
    assert len(_mean_run(images[:25], tmp_path)) == 25
    assert [part.name.split("-")[0] for part in ResultsTable(tmp_path / "results.parquet", None).parts()] == [
        "compacted"]
    assert len(_mean_run(images, tmp_path)) == 15
    assert sorted(pd.read_parquet(tmp_path / "results.parquet")["index"]) == list(range(40))
    assert sorted(path.name.split("-")[0] for path in (tmp_path / "results.parquet").iterdir()) == [
        "compacted", "compacted"]


@pytest.mark.parametrize("step", ["journal written", "some parts removed", "renamed"])
def test_a_merge_killed_at_any_step_never_shows_a_row_twice_and_the_next_run_finishes_it(tmp_path, monkeypatch,
                                                                                        step):
    import pandas as pd
    import pyarrow as pa

    from imgexplain import results

    images = _mean_images(6)
    monkeypatch.setattr(results.ResultsTable, "compact", lambda self, drop=(): None)
    monkeypatch.setattr(stream, "ROWS_PER_PART", 1)
    _mean_run(images, tmp_path)
    monkeypatch.undo()
    folder = tmp_path / "results.parquet"
    table = results.ResultsTable(folder, table_schema(pa.schema([("mean", pa.float64())])))
    parts = table.parts()
    assert len(parts) == 6

    def killed(self):  # stands for SIGKILL at the given step of _finish_compaction
        record = json.loads((folder / results.JOURNAL_NAME).read_text())
        if step != "journal written":
            for name in record["replaces"][:3]:
                (folder / name).unlink()
        if step == "renamed":
            for name in record["replaces"][3:]:
                (folder / name).unlink()
            os.replace(folder / f"{results.STAGED_PREFIX}{record['name']}", folder / record["name"])
        raise KeyboardInterrupt

    monkeypatch.setattr(results.ResultsTable, "_finish_compaction", killed)
    with pytest.raises(KeyboardInterrupt):
        table.compact()
    seen = list(pd.read_parquet(folder).image)
    assert len(seen) == len(set(seen)) and set(seen) <= {name for name, _ in images}
    monkeypatch.undo()
    assert _mean_run(images, tmp_path) == []  # the merge is finished: every row is there, none explained again
    assert sorted(pd.read_parquet(folder).image) == [name for name, _ in images]
    assert [part.name.split("-")[0] for part in results.ResultsTable(folder, None).parts()] == ["compacted"]
    assert not list(folder.glob(".*")) and not (folder / results.JOURNAL_NAME).exists()
