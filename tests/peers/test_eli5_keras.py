"""eli5 0.16's tests/test_keras.py, ported: only the imports differ; the tests of eli5's private helpers
(_get_activation_layer, _validate_doc) and of eli5.keras.gradcam.gradcam are left out (tests/peers/README.md)."""
"""Keras unit tests"""

import pytest

keras = pytest.importorskip('keras')

import keras.backend as K
from keras.models import Sequential, Model
from keras.layers import (
    Dense, 
    Activation, 
    Conv2D, 
    GlobalAveragePooling2D, 
    Input, 
    Lambda,
)
from keras.backend import epsilon
import numpy as np

from imgexplain import explain_prediction


# We need to put this layer in a fixture object AND access it in a parametrization
conv_layer = Conv2D(10, (3, 3))

@pytest.fixture(scope='module')
def simple_seq():
    """A simple sequential model for images."""
    model = Sequential([
        Activation('linear', input_shape=(32, 32, 1)), # index 0, input
        conv_layer,                                    # index 1, conv
        Conv2D(20, (3, 3)),                            # index 2, conv2
        GlobalAveragePooling2D(),                      # index 3, gap
        # output shape is (None, 20)
    ])
    print('Summary of model:')
    model.summary()
    # rename layers
    for i, layer in enumerate(model.layers):
        layer.name = 'layer%d' % i
    return model


def test_explain_prediction_score(simple_seq):
    expl = explain_prediction(simple_seq, np.zeros((1, 32, 32, 1)))
    assert expl.targets[0].score is not None
    assert expl.targets[0].proba is None


@pytest.fixture(scope='module')
def differentiable_model():
    inpt = Input(shape=(1,))
    op = Lambda(lambda x: x)(inpt) # identity function
    model = Model(inpt, op)
    model.summary()
    return model


@pytest.fixture(scope='module')
def nondifferentiable_model():
    inpt = Input(shape=(1,))
    op = Lambda(lambda x: K.constant(0) if x == 0 
        else K.constant(1))(inpt) # piecewise function
    model = Model(inpt, op)
    model.summary()
    return model
