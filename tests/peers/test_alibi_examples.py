"""The runnable code of alibi 0.9.6's image examples (doc/source/examples/anchor_image_imagenet.ipynb and
anchor_image_fashion_mnist.ipynb), with imgexplain's imports and stand-ins for the downloads: plots left out,
what the notebooks print or show checked instead (tests/peers/README.md)."""
import numpy as np
import pytest

from alibi_stand_ins import block_digits


@pytest.mark.slow
def test_anchor_image_imagenet():
    from imgexplain.datasets import load_samples  # stand-in for alibi.datasets.load_cats (a download)
    from imgexplain.zoo import decode_predictions, efficientnet_lite0
    from imgexplain import AnchorImage

    # Stand-in for InceptionV3(weights='imagenet') and its preprocess_input (a download): EfficientNet-Lite0,
    # whose predictor takes (N, 224, 224, 3) pixels in 0..255, preprocesses them itself and runs on ONNX Runtime.
    model = efficientnet_lite0(framework="torch")
    preprocess_input = np.asarray
    image_shape = (224, 224, 3)
    data = np.stack(list(load_samples(target_size=image_shape[:2], names=["chelsea", "coffee"]).values()))
    data = data.astype(np.float32)
    print(f'Images shape: {data.shape}')

    images = preprocess_input(data)
    preds = model.predictor(images)
    label = decode_predictions(preds, top=3)
    print(label[0])
    assert label[0][0][1] == "Egyptian_cat"

    predict_fn = lambda x: model.predictor(x)  # noqa: E731 (as the notebook writes it)

    segmentation_fn = 'slic'
    kwargs = {'n_segments': 15, 'compactness': 20, 'sigma': .5, 'start_label': 0}
    explainer = AnchorImage(predict_fn, image_shape, segmentation_fn=segmentation_fn,
                            segmentation_kwargs=kwargs, images_background=None)

    i = 0
    image = images[i]
    np.random.seed(0)
    explanation = explainer.explain(image, threshold=.95, p_sample=.5, tau=0.25)

    assert explanation.anchor.shape == image_shape and explanation.segments.shape == image_shape[:2]
    assert explanation.raw["feature"] and explanation.precision >= .95
    assert explainer.predictor(image[np.newaxis]).tolist() == [285]  # labels, as alibi's predictor


@pytest.mark.slow
def test_anchor_image_fashion_mnist():
    tf = pytest.importorskip("tensorflow")
    from tensorflow.keras.layers import Conv2D, Dense, Dropout, Flatten, MaxPooling2D, Input
    from tensorflow.keras.models import Model
    from tensorflow.keras.utils import to_categorical
    from imgexplain import AnchorImage

    # Stand-in for tf.keras.datasets.fashion_mnist.load_data() (a download): ten classes of bright 7x7 blocks.
    (x_train, y_train), (x_test, y_test) = block_digits(200, seed=0), block_digits(20, seed=1)
    x_train, x_test = (np.round(x * 255).astype(np.uint8)[..., 0] for x in (x_train, x_test))

    x_train = x_train.astype('float32') / 255
    x_test = x_test.astype('float32') / 255
    x_train = np.reshape(x_train, x_train.shape + (1,))
    x_test = np.reshape(x_test, x_test.shape + (1,))
    y_train = to_categorical(y_train)
    y_test = to_categorical(y_test)

    def model():
        x_in = Input(shape=(28, 28, 1))
        x = Conv2D(filters=64, kernel_size=2, padding='same', activation='relu')(x_in)
        x = MaxPooling2D(pool_size=2)(x)
        x = Dropout(0.3)(x)
        x = Conv2D(filters=32, kernel_size=2, padding='same', activation='relu')(x)
        x = MaxPooling2D(pool_size=2)(x)
        x = Dropout(0.3)(x)
        x = Flatten()(x)
        x = Dense(256, activation='relu')(x)
        x = Dropout(0.5)(x)
        x_out = Dense(10, activation='softmax')(x)
        cnn = Model(inputs=x_in, outputs=x_out)
        cnn.compile(loss='categorical_crossentropy', optimizer='adam', metrics=['accuracy'])
        return cnn

    tf.keras.utils.set_random_seed(0)
    cnn = model()
    cnn.fit(x_train, y_train, batch_size=64, epochs=3, verbose=0)
    score = cnn.evaluate(x_test, y_test, verbose=0)
    assert score[1] >= 0.85  # the notebook's test accuracy: 0.8867

    def superpixel(image, size=(4, 7)):
        segments = np.zeros([image.shape[0], image.shape[1]])
        row_idx, col_idx = np.where(segments == 0)
        for i, j in zip(row_idx, col_idx):
            segments[i, j] = int((image.shape[1]/size[1]) * (i//size[0]) + j//size[1])
        return segments

    predict_fn = lambda x: cnn.predict(x, verbose=0)  # noqa: E731 (verbose=0: no progress bar per call)

    image_shape = x_train[0].shape
    explainer = AnchorImage(predict_fn, image_shape, segmentation_fn=superpixel)

    i = 1
    image = x_test[i]
    assert cnn.predict(image.reshape(1, 28, 28, 1)).argmax() == 1

    explanation = explainer.explain(image, threshold=.95, p_sample=.8, seed=0)
    assert explanation.anchor[:, :, 0].shape == (28, 28)
    assert explanation.precision >= .95 and explanation.success
    # Class 1 is a uniform block in rows 0..6, columns 7..13: the superpixels on it keep their mean when
    # perturbed, so any anchor touches that block, and an empty anchor (the prediction always holds) is valid.
    anchor_rows, anchor_cols = np.nonzero(np.isin(explanation.segments, explanation.raw["feature"]))
    assert explanation.empty_anchor or (anchor_rows.min() < 7 and anchor_cols.min() < 14 and anchor_cols.max() >= 7)
