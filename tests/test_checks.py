"""The shared argument checks: known good values pass through, known bad ones raise exactly TypeError
(wrong type) or ValueError (wrong value)."""
import numpy as np
import pytest

from imgexplain import _checks


def _raises_exactly(error, check, *args, **kwargs):
    with pytest.raises(error) as raised:
        check(*args, **kwargs)
    assert type(raised.value) is error
    return str(raised.value)


@pytest.mark.parametrize("value, expected", [(3, True), (np.int64(3), True), (np.uint8(0), True), (-2, True),
                                             (True, False), (np.bool_(True), False), (3.0, False), ("3", False),
                                             (np.array(3), False), (None, False)])
def test_is_int(value, expected):
    assert _checks.is_int(value) is expected


@pytest.mark.parametrize("value, expected", [(0.5, True), (np.float32(0.5), True), (2, True), (np.int16(2), True),
                                             (False, False), ("0.5", False), (1j, False), (None, False)])
def test_is_number(value, expected):
    assert _checks.is_number(value) is expected


def test_positive_int():
    assert _checks.check_positive_int(np.int32(4), "n") == 4 and type(_checks.check_positive_int(np.int32(4), "n")) is int
    assert _checks.check_positive_int(None, "n", allow_none=True) is None
    for bad in (2.0, True, "3", None, np.float64(2)):
        assert "n must be a positive integer" in _raises_exactly(TypeError, _checks.check_positive_int, bad, "n")
    for bad in (0, -1, np.int64(0)):
        assert "n must be a positive integer; got" in _raises_exactly(ValueError, _checks.check_positive_int, bad, "n")
    assert "None or a positive" in _raises_exactly(ValueError, _checks.check_positive_int, 0, "n", allow_none=True)


def test_int_in_a_range():
    assert _checks.check_int(1000, "top", 1, 1000) == 1000
    assert _checks.check_int(-5, "k") == -5
    assert "between 1 and 10" in _raises_exactly(ValueError, _checks.check_int, 11, "top", 1, 10)
    assert ">= 0" in _raises_exactly(ValueError, _checks.check_int, -1, "k", 0)
    _raises_exactly(ValueError, _checks.check_int, 1, "k", None, 0)
    _raises_exactly(TypeError, _checks.check_int, 5.0, "top", 1, 10)


def test_number_in_a_range():
    assert _checks.check_number(0, "p", 0, 1) == 0.0 and _checks.check_number(np.float32(1), "p", 0, 1) == 1.0
    assert _checks.check_number(-7, "x") == -7.0
    for bad in (1.5, -0.1, float("nan")):
        assert r"p must be a number in [0, 1]" in _raises_exactly(ValueError, _checks.check_number, bad, "p", 0, 1)
    for bad in ("0.5", True, None, [0.5]):
        _raises_exactly(TypeError, _checks.check_number, bad, "p", 0, 1)
    assert ">= 0" in _raises_exactly(ValueError, _checks.check_number, -1, "x", 0)


def test_number_in_an_open_range():
    assert _checks.check_number(0.5, "tau", 0, 1, inclusive=False) == 0.5
    for bad in (0, 1, 0.0, 1.5):
        assert "tau must be a number in (0, 1)" in \
            _raises_exactly(ValueError, _checks.check_number, bad, "tau", 0, 1, inclusive=False)
    assert _checks.check_number(1e-9, "timeout", 0, inclusive=False) == 1e-9
    for bad in (0, -1.0, float("nan")):
        assert "timeout must be a positive number" in \
            _raises_exactly(ValueError, _checks.check_number, bad, "timeout", 0, inclusive=False)
    assert "x must be a number > 2" in _raises_exactly(ValueError, _checks.check_number, 2, "x", 2, inclusive=False)
    assert "x must be a number < 2" in _raises_exactly(ValueError, _checks.check_number, 2, "x", None, 2, False)
    _raises_exactly(TypeError, _checks.check_number, True, "tau", 0, 1, inclusive=False)
    assert _checks.check_number(None, "timeout", 0, inclusive=False, allow_none=True) is None
    assert "timeout must be None or a positive number" in \
        _raises_exactly(ValueError, _checks.check_number, 0, "timeout", 0, inclusive=False, allow_none=True)


def test_size():
    assert _checks.check_size([4, np.int64(5)], "size") == (4, 5)
    assert _checks.check_size(None, "size", allow_none=True) is None
    for bad in (224, None, "224x224", (4.0, 5), (True, 5)):
        _raises_exactly(TypeError, _checks.check_size, bad, "size")
    for bad in ((4,), (4, 5, 3), (0, 5), (4, -1)):
        assert "size must be a (height, width) pair of positive integers" in \
            _raises_exactly(ValueError, _checks.check_size, bad, "size")


def test_finite():
    _checks.check_finite(np.zeros((2, 2)), "image")
    for bad in (np.nan, np.inf, -np.inf):
        array = np.zeros((2, 2))
        array[1, 0] = bad
        assert "image contains NaN or infinite" in _raises_exactly(ValueError, _checks.check_finite, array, "image")


def test_numeric_dtype():
    for good in (np.uint8, np.int64, np.float16, np.float64):
        _checks.check_numeric_dtype(np.zeros(2, dtype=good), "x")
    for bad in (bool, object, "U1", complex):
        _raises_exactly(TypeError, _checks.check_numeric_dtype, np.zeros(2, dtype=bad), "x")


def test_image():
    image = np.zeros((3, 4, 3), dtype=np.uint8)
    assert _checks.check_image(image) is image
    assert _checks.check_image([[1, 2], [3, 4]]).shape == (2, 2)
    for bad in (np.full((2, 2), "a"), np.zeros((2, 2), dtype=bool), np.array([[None]])):
        _raises_exactly(TypeError, _checks.check_image, bad)
    for bad in (np.zeros(4), np.zeros((1, 2, 2, 3)), np.zeros((0, 4)), np.zeros((4, 0, 3)), np.full((2, 2), np.nan)):
        _raises_exactly(ValueError, _checks.check_image, bad)


def test_pixel_range():
    _checks.check_pixel_range(np.array([0.0, 255.0]), "image")
    _checks.check_pixel_range(np.array([0.0, 1.0]), "image", high=1)
    _checks.check_pixel_range(np.zeros(0), "image")
    message = _raises_exactly(ValueError, _checks.check_pixel_range, np.array([-0.5, 3]), "image")
    assert message == "image must hold pixels in 0..255; got values from -0.5 to 3"
    message = _raises_exactly(ValueError, _checks.check_pixel_range, np.array([0, 2.0]), "image", 1, " (scale it)")
    assert message == "image must hold pixels in [0, 1] (scale it); got values from 0 to 2"
    _raises_exactly(ValueError, _checks.check_pixel_range, np.array([256]), "image")


def test_class_range():
    _checks.check_class_range(np.array([0, 2]), 3)
    message = _raises_exactly(ValueError, _checks.check_class_range, np.array([0, 3, -1]), 3)
    assert message == "targets must lie in [0, 3) for a model with 3 classes; got [3, -1]"


def test_class_index():
    assert _checks.check_class_index(np.int8(2), "target", n_classes=3) == 2
    assert _checks.check_class_index(None, "target", allow_none=True) is None
    for bad in (1.0, True, "1", None):
        assert "target must be a non-negative int" in _raises_exactly(TypeError, _checks.check_class_index, bad)
    _raises_exactly(ValueError, _checks.check_class_index, -1)
    assert "[0, 3)" in _raises_exactly(ValueError, _checks.check_class_index, 3, n_classes=3)


def test_class_indices():
    np.testing.assert_array_equal(_checks.check_class_indices(2, 3), [2, 2, 2])
    np.testing.assert_array_equal(_checks.check_class_indices(np.array(1), 2), [1, 1])
    indices = _checks.check_class_indices(np.array([0, 4], dtype=np.uint8), 2, n_classes=5)
    assert indices.dtype == np.int64 and indices.tolist() == [0, 4]
    for bad in ("1", 1.0, True, None, [0, 1.0], np.array([True, False]), [[0], [1]]):
        _raises_exactly(TypeError, _checks.check_class_indices, bad, 2)
    assert "(3 images); got 2 targets" in _raises_exactly(ValueError, _checks.check_class_indices, [0, 1], 3)
    assert ">= 0" in _raises_exactly(ValueError, _checks.check_class_indices, [0, -1], 2)
    assert "2**31" in _raises_exactly(ValueError, _checks.check_class_indices, [0, 2**31], 2)
    assert "2**31" in _raises_exactly(ValueError, _checks.check_class_indices, 2**70, 2)
    assert "[0, 5)" in _raises_exactly(ValueError, _checks.check_class_indices, [0, 5], 2, n_classes=5)
