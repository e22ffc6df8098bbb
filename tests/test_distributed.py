"""explain_many: the same explanations in the same order, in this process or on Ray workers; bad input."""
import functools
import sys

import numpy as np
import pytest

from imgexplain import AnchorImage, PredictorError
from imgexplain.distributed import explain_many
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
    raise OSError("the model server is down")


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
    with pytest.raises(PredictorError, match="raised OSError.*the model server is down"):
        explain_many(make_explainer(failing_predictor), IMAGES[:2], n_workers=1, progress=False)


def broken_factory():
    raise FileNotFoundError("no such model file: resnet.pt")


@pytest.mark.slow
def test_an_explainer_that_cannot_be_built_on_a_worker_raises_its_error_here():
    pytest.importorskip("ray")
    send_this_module_by_value()
    with pytest.raises(FileNotFoundError, match="no such model file: resnet.pt"):
        explain_many(broken_factory, IMAGES[:1], n_workers=1, progress=False)


@pytest.mark.parametrize("arguments, error, message", [
    (dict(make_explainer="AnchorImage"), TypeError, "make_explainer must be a callable"),
    (dict(images=[]), ValueError, "images is empty"),
    (dict(images=np.zeros((4, 4))), ValueError, r"got an array of shape \(4, 4\)"),
    (dict(images="cat.png"), TypeError, "images must be a sequence of images"),
    (dict(n_workers=-1), ValueError, "n_workers must be None or an int >= 0"),
    (dict(n_workers=1.5), ValueError, "n_workers must be None or an int >= 0"),
    (dict(n_workers=True), ValueError, "n_workers must be None or an int >= 0"),
    (dict(cpus_per_worker=0), ValueError, "cpus_per_worker must be a positive number"),
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
