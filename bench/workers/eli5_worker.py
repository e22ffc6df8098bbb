"""eli5 0.16 side of the Keras Grad-CAM benchmark (runs in bench/.venvs/eli5)."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from bench import problems  # noqa: E402
from bench.workers.protocol import serve  # noqa: E402

_MODELS = {}


def _model(path):
    import keras

    if path not in _MODELS:
        _MODELS[path] = keras.models.load_model(path, compile=False)
    return _MODELS[path]


def gradcam(model_path, images_path, layer, batches, repeats, maps_path, batch1_images=8):
    import eli5

    model = _model(model_path)
    images = np.load(images_path)

    def explain(batch):
        return [eli5.explain_prediction(model, image[None], layer=layer) for image in batch]

    timings = {str(b): problems.seconds_per_image(explain, images[:batch1_images] if b == 1 else images, b, repeats)
               for b in batches}
    explanations = explain(images)
    np.save(maps_path, np.stack([e.targets[0].heatmap for e in explanations]))
    return {"timings": timings, "targets": [int(e.targets[0].target) for e in explanations]}


def versions():
    import eli5
    import keras
    import tensorflow as tf

    return {"version": eli5.__version__, "keras": keras.__version__, "tensorflow": tf.__version__}


if __name__ == "__main__":
    serve({"gradcam": gradcam, "version": versions})
