import numpy as np
import pytest
import skimage.data
from PIL import Image, ImageFile

from imgexplain import datasets


def test_load_cats_like_alibi():
    cats = datasets.load_cats()
    assert cats.data.shape == (1, 299, 299, 3) and cats.data.dtype == np.uint8
    assert cats.target.tolist() == [281]
    assert cats.target_names == ["tabby"] and cats.image_names == ["chelsea"]
    assert cats["data"] is cats.data
    data, target = datasets.load_cats(target_size=(299, 299), return_X_y=True)
    np.testing.assert_array_equal(data, cats.data)
    np.testing.assert_array_equal(target, cats.target)


def test_load_cats_at_the_original_size_is_chelsea_itself():
    data, _ = datasets.load_cats(target_size=(300, 451), return_X_y=True)
    np.testing.assert_array_equal(data[0], skimage.data.chelsea())
    assert datasets.load_cats(target_size=(120, 200)).data.shape == (1, 120, 200, 3)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"target_size": 299}, TypeError, "target_size must be a .height, width. pair"),
    ({"target_size": (299, 0)}, ValueError, "target_size"),
    ({"target_size": (299, 299, 3)}, ValueError, "target_size"),
    ({"target_size": (299.0, 299.0)}, TypeError, "target_size"),
    ({"target_size": (True, 299)}, TypeError, "target_size"),
    ({"target_size": None}, TypeError, "target_size"),
    ({"return_X_y": "yes"}, TypeError, "return_X_y must be True or False"),
])
def test_load_cats_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        datasets.load_cats(**kwargs)


def test_bunch_attributes():
    bunch = datasets.Bunch(data=1)
    assert bunch.data == 1 and "data" in dir(bunch)
    with pytest.raises(AttributeError, match="target"):
        bunch.target


def test_resize_image_is_pil_bilinear():
    image = skimage.data.coffee()
    expected = np.asarray(Image.fromarray(image).resize((150, 100), Image.Resampling.BILINEAR))
    resized = datasets.resize_image(image, (100, 150))
    assert resized.shape == (100, 150, 3) and resized.dtype == np.uint8
    np.testing.assert_array_equal(resized, expected)
    constant = np.full((37, 53, 3), 77, dtype=np.uint8)
    assert (datasets.resize_image(constant, (224, 224)) == 77).all()


def test_load_image_converts_arrays_to_rgb_uint8():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    rgb = datasets.load_image(grey, target_size=None)
    assert rgb.shape == (3, 4, 3) and all((rgb[:, :, c] == grey).all() for c in range(3))
    mask = np.array([[True, False]])
    np.testing.assert_array_equal(datasets.load_image(mask, None)[:, :, 0], [[255, 0]])
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    rgba[..., 0] = 9
    np.testing.assert_array_equal(datasets.load_image(rgba, None), rgba[..., :3])
    floats = np.array([[0.4, 0.6, 254.5]])
    np.testing.assert_array_equal(datasets.load_image(floats, None)[0, :, 1], [0, 1, 254])
    assert datasets.load_image(grey[:, :, None], (8, 6)).shape == (8, 6, 3)


def test_load_image_reads_files_and_pil_images(tmp_path):
    image = skimage.data.astronaut()[:40, :60]
    path = tmp_path / "astronaut.png"
    Image.fromarray(image).save(path)
    np.testing.assert_array_equal(datasets.load_image(path, None), image)
    np.testing.assert_array_equal(datasets.load_image(str(path), (20, 30)),
                                  datasets.resize_image(image, (20, 30)))
    np.testing.assert_array_equal(datasets.load_image(Image.fromarray(image).convert("L"), None)[:, :, 2],
                                  np.asarray(Image.fromarray(image).convert("L")))


def test_load_image_applies_the_exif_orientation(tmp_path):
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: show the picture rotated 90 degrees clockwise
    path = tmp_path / "turned.png"
    Image.fromarray(image).save(path, exif=exif)
    np.testing.assert_array_equal(datasets.load_image(path, None), np.rot90(image, k=-1))


@pytest.mark.parametrize("image, error, match", [
    (np.zeros((4, 4, 2)), ValueError, r"got shape \(4, 4, 2\)"),
    (np.zeros((2, 4, 4, 3)), ValueError, "image must have shape"),
    (np.zeros((0, 4)), ValueError, "must not be empty"),
    (np.full((4, 4), 256.0), ValueError, "0..255"),
    (np.full((4, 4), -0.5), ValueError, "0..255"),
    (np.full((4, 4), np.nan), ValueError, "NaN"),
    (np.full((4, 4), "a"), TypeError, "numeric"),
])
def test_load_image_rejects_bad_arrays(image, error, match):
    with pytest.raises(error, match=match):
        datasets.load_image(image)


def test_load_image_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        datasets.load_image(tmp_path / "missing.png")


def test_load_samples_are_rgb_uint8_at_the_target_size():
    samples = datasets.load_samples()
    assert list(samples) == ["astronaut", "camera", "chelsea", "coffee", "coins", "horse", "hubble_deep_field",
                             "immunohistochemistry", "moon", "motorcycle", "retina", "rocket"]
    for name, image in samples.items():
        assert image.shape == (224, 224, 3) and image.dtype == np.uint8, name


def test_load_samples_keep_their_pixels_without_resizing():
    samples = datasets.load_samples(target_size=None, names=["horse", "camera", "chelsea"])
    assert list(samples) == ["horse", "camera", "chelsea"]
    horse = samples["horse"]
    assert horse.shape == (328, 400, 3) and set(np.unique(horse)) == {0, 255}
    assert (horse[..., 0] == horse[..., 2]).all() and horse[0, 0].tolist() == [255, 255, 255]
    np.testing.assert_array_equal(samples["camera"][..., 1], skimage.data.camera())
    np.testing.assert_array_equal(samples["chelsea"], skimage.data.chelsea())


@pytest.mark.parametrize("names, error, match", [
    (["cat"], ValueError, r"unknown images \['cat'\]"),
    ("chelsea", TypeError, "names must be a sequence"),
    ([1], TypeError, "names must be a sequence"),
    (3, TypeError, "names must be a sequence"),
])
def test_load_samples_rejects_bad_names(names, error, match):
    with pytest.raises(error, match=match):
        datasets.load_samples(names=names)


def test_a_16_bit_grey_png_is_scaled_by_its_own_range(tmp_path, caplog):
    grey = np.array([[0, 257, 32896], [65535, 1000, 60000]], dtype=np.uint16)
    path = tmp_path / "grey16.png"
    Image.fromarray(grey).save(path)
    assert Image.open(path).mode == "I;16"
    with caplog.at_level("INFO", logger="imgexplain.datasets"):
        rgb = datasets.load_image(path, None)
    expected = np.array([[0, 1, 128], [255, 4, 233]], dtype=np.uint8)
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 3, 3)
    for channel in range(3):
        np.testing.assert_array_equal(rgb[:, :, channel], expected)
    assert "16-bit" in caplog.text


@pytest.mark.parametrize("values, expected, stretched", [
    ([[0.0, 0.5], [0.25, 1.0]], [[0, 128], [64, 255]], False),
    ([[-1.0, 3.0], [1.0, 0.0]], [[0, 255], [128, 64]], True),
])
def test_a_float_tiff_is_scaled_by_its_own_range(tmp_path, caplog, values, expected, stretched):
    path = tmp_path / "float.tif"
    Image.fromarray(np.array(values, dtype=np.float32)).save(path)
    assert Image.open(path).mode == "F"
    with caplog.at_level("INFO", logger="imgexplain.datasets"):
        rgb = datasets.load_image(path, None)
    np.testing.assert_array_equal(rgb[:, :, 1], expected)
    assert ("stretched" in caplog.text) == stretched
    assert any(record.levelname == "WARNING" for record in caplog.records) == stretched


def test_a_float_tiff_with_nan_is_refused(tmp_path):
    path = tmp_path / "nan.tif"
    Image.fromarray(np.array([[0.0, np.nan]], dtype=np.float32)).save(path)
    with pytest.raises(ValueError, match="NaN"):
        datasets.load_image(path, None)


def test_transparent_pixels_are_composited_on_white_and_said(tmp_path, caplog):
    rgba = np.array([[[200, 0, 0, 255], [200, 0, 0, 0], [0, 100, 0, 128]]], dtype=np.uint8)
    path = tmp_path / "rgba.png"
    Image.fromarray(rgba).save(path)
    with caplog.at_level("WARNING", logger="imgexplain.datasets"):
        rgb = datasets.load_image(path, None)
    np.testing.assert_array_equal(rgb, [[[200, 0, 0], [255, 255, 255], [127, 177, 127]]])
    assert "composited on white" in caplog.text and "rgba.png" in caplog.text
    caplog.clear()
    opaque = rgba.copy()
    opaque[..., 3] = 255
    Image.fromarray(opaque).save(path)
    with caplog.at_level("WARNING", logger="imgexplain.datasets"):
        np.testing.assert_array_equal(datasets.load_image(path, None), opaque[..., :3])
    assert caplog.text == ""


def test_a_palette_png_with_a_transparent_entry(tmp_path):
    palette = Image.new("P", (3, 1))
    palette.putpalette([10, 20, 30, 0, 0, 255, 90, 80, 70] + [0] * (256 * 3 - 9))
    palette.putdata([0, 1, 2])
    plain, transparent = tmp_path / "plain.png", tmp_path / "transparent.png"
    palette.save(plain)
    palette.save(transparent, transparency=1)
    assert Image.open(transparent).mode == "P"
    np.testing.assert_array_equal(datasets.load_image(plain, None), [[[10, 20, 30], [0, 0, 255], [90, 80, 70]]])
    np.testing.assert_array_equal(datasets.load_image(transparent, None),
                                  [[[10, 20, 30], [255, 255, 255], [90, 80, 70]]])


def test_images_above_max_pixels_are_refused_before_decoding(tmp_path, monkeypatch):
    path = tmp_path / "wide.png"
    Image.fromarray(np.zeros((20, 30), dtype=np.uint8)).save(path)
    decoded = []
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(self))
    with pytest.raises(datasets.ImageTooLargeError, match=r"30x20 = 600 pixels.*max_pixels = 599.*--max-pixels"):
        datasets.load_image(path, None, max_pixels=599)
    assert decoded == []
    monkeypatch.undo()
    assert datasets.load_image(path, None, max_pixels=600).shape == (20, 30, 3)
    assert issubclass(datasets.ImageTooLargeError, ValueError)
    with pytest.raises(ValueError, match="max_pixels"):
        datasets.load_image(np.zeros((20, 30)), None, max_pixels=100)


def test_max_pixels_none_lifts_pillows_own_limit_too(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.fromarray(np.zeros((20, 30), dtype=np.uint8)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    assert datasets.load_image(path, None, max_pixels=None).shape == (20, 30, 3)
    assert Image.MAX_IMAGE_PIXELS == 100
    assert datasets.MAX_PIXELS >= 4000 * 3000


@pytest.mark.parametrize("max_pixels, error", [(0, ValueError), (-5, ValueError), (1.5, TypeError),
                                               (True, TypeError), ("1000", TypeError)])
def test_bad_max_pixels(max_pixels, error):
    with pytest.raises(error, match="max_pixels must be None or a positive int"):
        datasets.load_image(np.zeros((2, 2)), None, max_pixels=max_pixels)


def test_each_file_is_opened_and_decoded_once(tmp_path, monkeypatch):
    path = tmp_path / "once.png"
    Image.fromarray(skimage.data.astronaut()[:40, :60]).save(path)
    opened = []
    original_open = Image.open
    monkeypatch.setattr(Image, "open", lambda *args, **kwargs: opened.append(args) or original_open(*args, **kwargs))
    datasets.load_image(path, (20, 30))
    assert len(opened) == 1
