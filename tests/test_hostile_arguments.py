"""Arguments of the library that used to be silently truncated, allocate without bound, or fail deep inside numpy:
each is a clear TypeError, ValueError or PredictorError before the model is called."""
import numpy as np
import pytest

from imgexplain import AnchorImage, PredictorError
from imgexplain.segmentation import grid_segments

SHAPE = (16, 16, 3)


def _grid(image):
    return grid_segments(SHAPE[:2], (4, 4))


class CountingPredictor:
    def __init__(self, output=lambda images: np.tile([[0.2, 0.8]], (len(images), 1))):
        self.calls, self.output = 0, output

    def __call__(self, images):
        self.calls += 1
        return self.output(images)


def test_a_float_image_shape_is_refused_not_truncated():
    with pytest.raises(TypeError, match=r"image_shape must be a tuple of ints .* got \(32.5, 32, 3\)"):
        AnchorImage(CountingPredictor(), (32.5, 32, 3))
    assert AnchorImage(CountingPredictor(), (np.int64(16), 16, 3)).image_shape == SHAPE


@pytest.mark.parametrize("argument", ["coverage_samples", "batch_size", "binary_cache_size"])
def test_sample_counts_beyond_the_machine_s_memory_are_refused_before_the_model_is_called(argument):
    predictor = CountingPredictor()
    explainer = AnchorImage(predictor, SHAPE, segmentation_fn=_grid)
    predictor.calls = 0  # the constructor's probe (alibi's) is not the explanation's
    with pytest.raises(ValueError, match=f"{argument}=1000000000000 needs .* GiB .* use a smaller {argument}"):
        explainer.explain(np.zeros(SHAPE, np.float32), **{argument: 10**12})
    assert predictor.calls == 0


def test_a_predictor_returning_no_columns_is_a_predictor_error():
    with pytest.raises(PredictorError, match=r"returned shape \(1, 0\) for 1 images"):
        AnchorImage(CountingPredictor(lambda images: np.zeros((len(images), 0))), SHAPE, segmentation_fn=_grid)


@pytest.mark.parametrize("n_segments, error", [(-1, ValueError), (0, ValueError), (2.5, TypeError)])
def test_slic_with_a_bad_number_of_segments_says_so(n_segments, error):
    with pytest.raises(error, match=r"segmentation_kwargs\['n_segments'\] must be a positive integer"):
        AnchorImage(CountingPredictor(), SHAPE, segmentation_kwargs={"n_segments": n_segments})


def test_an_infinite_timeout_is_refused():
    from imgexplain.pipeline import explain_dataset

    with pytest.raises(ValueError, match="timeout must be a finite number of seconds; got inf"):
        explain_dataset([np.zeros(SHAPE)], CountingPredictor, n_workers=1, timeout=float("inf"))
