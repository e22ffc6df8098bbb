"""Ray workers take calls of several images, explain them in batches and encode their pictures; a worker lost
in the middle of a call loses only that call's images, each retried once, one at a time."""
import os
import signal
import sys

import numpy as np
import pytest

from imgexplain.output_folder import OutputFolder
from imgexplain.pipeline import explain_dataset

pytestmark = pytest.mark.slow
KILLER = 20  # the image that kills its worker's process


def _drawn_by_this_process():
    return str(os.getpid()).encode()


class BatchMeans:
    """Explains a batch at once, as the command's explainer does: each image's mean, the size of its batch and
    a picture drawn when encoded (its bytes: the process that drew it). An image whose first pixel is 1 kills
    the worker's process."""

    def load(self, image):
        return image

    def explain_batch(self, images):
        if any(image[0, 0, 0] == 1 for image in images):
            os.kill(os.getpid(), signal.SIGKILL)
        return [{"mean": float(image.mean()), "batch": len(images),
                 "files": {f"pictures/{image[0, 0, 1]:.0f}.txt": _drawn_by_this_process}} for image in images]


def test_workers_explain_calls_in_batches_and_a_lost_worker_s_images_are_retried_one_by_one(tmp_path):
    import pandas as pd
    import pyarrow as pa

    cloudpickle = pytest.importorskip("ray.cloudpickle")

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test file
    images = []
    for k in range(40):
        image = np.full((2, 2, 3), 10.0 + k)
        image[0, 0, 0] = 1 if k == KILLER else 0
        images.append((f"image {k}", image))
    schema = pa.schema([("mean", pa.float64()), ("batch", pa.int64())])
    with OutputFolder(tmp_path, ["pictures"], {}) as out:
        results = list(explain_dataset(images, BatchMeans, out=out, schema=schema, n_workers=2, progress=False))
    assert sorted(result.index for result in results) == list(range(40))
    table = pd.read_parquet(tmp_path / "results.parquet").sort_values("index").reset_index(drop=True)
    assert list(table.status) == ["ok"] * KILLER + ["error"] + ["ok"] * (39 - KILLER)
    assert table.error_type.iloc[KILLER] == "WorkerDiedError"
    np.testing.assert_allclose(table["mean"].drop(index=KILLER), [images[k][1].mean() for k in range(40)
                                                                   if k != KILLER])
    assert table["batch"].max() >= 4  # several images in one explain_batch
    drawn_by = {(tmp_path / "pictures" / f"{10 + k}.txt").read_bytes() for k in range(40) if k != KILLER}
    assert str(os.getpid()).encode() not in drawn_by  # the pictures were encoded on the workers
