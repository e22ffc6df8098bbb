"""Sample images that ship with imgexplain's dependencies, and the image loader used everywhere (what it
makes of pixels of any mode: :mod:`imgexplain._pixels`).

Nothing is downloaded: the photographs come inside scikit-image's wheel (``skimage.data``).
Every image is resized the same way, by `resize_image` (PIL's bilinear filter, which
antialiases when shrinking); ``imgexplain.zoo``'s reference outputs assume it.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence

import numpy as np
from PIL import Image, ImageOps

from imgexplain._files import open_regular
from imgexplain._checks import check_positive_int, check_size
from imgexplain._pixels import as_rgb_uint8, rgb_from_pil

RESAMPLING = Image.Resampling.BILINEAR
# Largest image `load_image` accepts by default: 50 megapixels, 150 MB as RGB.
MAX_PIXELS = 50_000_000
_PILLOW_LIMIT_LOCK = threading.Lock()
# Chelsea is a ginger tabby: ImageNet class 281, "tabby" (EfficientNet-Lite0 says 285, Egyptian cat).
_CATS = (("chelsea", 281, "tabby"),)
_SAMPLES = ("astronaut", "camera", "chelsea", "coffee", "coins", "horse", "hubble_deep_field",
            "immunohistochemistry", "moon", "motorcycle", "retina", "rocket")


class Bunch(dict):
    """A dict whose keys are also attributes, like the Bunch of scikit-learn and alibi.

    Examples
    --------
    >>> from imgexplain.datasets import Bunch
    >>> bunch = Bunch(data=[1, 2], target=[0, 1])
    >>> bunch.target
    [0, 1]
    >>> bunch["data"] is bunch.data
    True
    """

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __dir__(self):
        return [*super().__dir__(), *self.keys()]


class ImageTooLargeError(ValueError):
    """The image has more pixels than ``max_pixels`` (``--max-pixels`` on the command line) allows.

    A ValueError, raised by `load_image` and `check_image_file` before any pixel is decoded.

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain.datasets import ImageTooLargeError, load_image
    >>> try:
    ...     load_image(np.zeros((100, 100, 3), np.uint8), max_pixels=1000)
    ... except ImageTooLargeError as error:
    ...     print(error)
    image is 100x100 = 10,000 pixels, more than max_pixels = 1,000; ...
    """


def _check_pixel_count(width, height, max_pixels, name):
    if max_pixels is not None and width * height > max_pixels:
        raise ImageTooLargeError(
            f"{name} is {width}x{height} = {width * height:,} pixels, more than max_pixels = {max_pixels:,}; "
            "raise the limit (--max-pixels on the command line, max_pixels in Python; None for no limit)")


def _open_file(file, max_pixels, name):
    """Open an image from an open file and check its size from the header, before any pixel is decoded."""
    # Pillow's decompression-bomb limit is replaced by max_pixels.
    with _PILLOW_LIMIT_LOCK:
        pillow_limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            opened = Image.open(file)
        finally:
            Image.MAX_IMAGE_PIXELS = pillow_limit
    try:
        _check_pixel_count(*opened.size, max_pixels, name)
    except ImageTooLargeError:
        opened.close()
        raise
    return opened


def _read_file(path, max_pixels):
    """Decode an image file once, after checking its size from the header; the EXIF orientation is applied.

    Only a regular file is opened: a FIFO or a device is refused (NotRegularFileError), never read.
    """
    name = os.fspath(path)
    with open_regular(path) as file, _open_file(file, max_pixels, name) as opened:
        return rgb_from_pil(ImageOps.exif_transpose(opened, in_place=True) or opened, name)


def check_image_file(path: str | os.PathLike, max_pixels: int | None = MAX_PIXELS) -> None:
    """Check that `load_image` can read the file at `path`, from its header only (no pixel is decoded).

    Parameters
    ----------
    path : str or os.PathLike
        An image file.
    max_pixels : int or None
        Largest number of pixels accepted, as in `load_image`.

    Raises
    ------
    ImageTooLargeError
        The image has more than `max_pixels` pixels.
    PIL.UnidentifiedImageError
        Pillow does not recognise the file as an image.
    OSError
        The file cannot be read, or is not a regular file (a FIFO, a device: never read).
    TypeError, ValueError
        `max_pixels` is neither None nor a positive int (TypeError when it is not an int).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> from imgexplain.datasets import check_image_file
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = pathlib.Path(folder) / "small.png"
    ...     Image.new("RGB", (40, 30)).save(path)
    ...     check_image_file(path)
    ...     check_image_file(path, max_pixels=1000)
    Traceback (most recent call last):
    ...
    imgexplain.datasets.ImageTooLargeError: .../small.png is 40x30 = 1,200 pixels, more than max_pixels = 1,000; ...
    """
    max_pixels = check_positive_int(max_pixels, "max_pixels", allow_none=True)
    with open_regular(path) as file:
        _open_file(file, max_pixels, os.fspath(path)).close()


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a (H, W, 3) uint8 image to ``size`` = (height, width) with PIL's bilinear filter.

    The filter antialiases when shrinking; every image imgexplain loads is resized by this function.

    Parameters
    ----------
    image : (H, W, 3) uint8 array
        The image; it is not modified.
    size : (int, int)
        (height, width) of the result; the aspect ratio is not kept.

    Returns
    -------
    (height, width, 3) uint8 ndarray
        A new array, also when `image` already has that size.

    Raises
    ------
    TypeError, ValueError
        `size` is not a pair of positive ints (TypeError when it is not a pair of ints).

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain.datasets import resize_image
    >>> image = np.zeros((4, 4, 3), np.uint8)
    >>> image[:, 2:] = 200
    >>> resize_image(image, (2, 2))[..., 0]  # the edge is antialiased
    array([[ 29, 171],
           [ 29, 171]], dtype=uint8)
    """
    height, width = check_size(size, "size")
    image = np.asarray(image)
    if image.shape[:2] == (height, width):
        return image.copy()
    return np.asarray(Image.fromarray(image).resize((width, height), RESAMPLING))


def load_image(image: str | os.PathLike | Image.Image | np.ndarray,
               target_size: tuple[int, int] | None = (224, 224), *,
               max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
    """Load an image as a (height, width, 3) uint8 RGB array, resized to `target_size`.

    Parameters
    ----------
    image : str, os.PathLike, PIL.Image.Image or array-like
        A file (any format PIL reads, decoded once; the EXIF orientation is applied), a PIL image,
        or an array of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) with pixels in 0..255 (bool
        arrays count as 0 and 255). Pixels are scaled by the file's own range: 16-bit grey is
        divided by 257, floating-point grey in [0, 1] is multiplied by 255 and any other
        floating-point range is stretched to 0..255. Grey images become RGB; transparent pixels
        are composited on white. What was scaled or composited is logged on the
        ``imgexplain.datasets`` logger (composited alpha and stretched ranges as warnings).
    target_size : (int, int) or None
        (height, width) to resize to, aspect ratio not kept; None keeps the image's size.
    max_pixels : int or None
        Largest number of pixels accepted (default `MAX_PIXELS`); a file's size is read from its
        header before any pixel is decoded. Larger images raise `ImageTooLargeError` (a ValueError).
        None accepts any size, also above Pillow's decompression-bomb limit.

    Returns
    -------
    (height, width, 3) uint8 ndarray
        A new array; an array passed in is not modified.

    Raises
    ------
    TypeError
        An array that is not numeric, or a `target_size` or `max_pixels` that is not made of ints.
    ValueError
        A wrong shape, pixels outside 0..255, NaN, or a `target_size` or `max_pixels` out of range.
    ImageTooLargeError
        More pixels than `max_pixels` (a ValueError).
    PIL.UnidentifiedImageError, OSError
        A file that is not an image, or that cannot be read.

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain.datasets import load_image
    >>> grey = np.array([[0.0, 255.0], [128.0, 64.0]])
    >>> rgb = load_image(grey, target_size=None)
    >>> rgb.shape, rgb.dtype
    ((2, 2, 3), dtype('uint8'))
    >>> rgb[1, 0]
    array([128, 128, 128], dtype=uint8)
    >>> load_image(grey, target_size=(8, 6)).shape
    (8, 6, 3)
    """
    size = check_size(target_size, "target_size", allow_none=True)
    max_pixels = check_positive_int(max_pixels, "max_pixels", allow_none=True)
    if isinstance(image, (str, os.PathLike)):
        array = _read_file(image, max_pixels)
    elif isinstance(image, Image.Image):
        _check_pixel_count(*image.size, max_pixels, "image")
        array = rgb_from_pil(image, "image")
    else:
        array = np.asarray(image)
        if array.ndim >= 2:
            _check_pixel_count(array.shape[1], array.shape[0], max_pixels, "image")
        array = as_rgb_uint8(array).copy()
    return array if size is None else resize_image(array, size)


def _skimage_photo(name: str) -> np.ndarray:
    import skimage.data

    if name == "motorcycle":
        return skimage.data.stereo_motorcycle()[0]
    return getattr(skimage.data, name)()


def load_cats(target_size: tuple[int, int] = (299, 299),
              return_X_y: bool = False) -> Bunch | tuple[np.ndarray, np.ndarray]:
    """Photographs of cats that ship offline, in the manner of ``alibi.datasets.load_cats``.

    Only one cat photograph ships with the dependencies today: scikit-image's ``chelsea``
    (``skimage.data.cat`` is the same picture).

    Parameters
    ----------
    target_size : (int, int)
        (height, width) of the returned images (resized with `resize_image`, aspect not kept).
    return_X_y : bool
        If True, return ``(data, target)`` instead of a `Bunch`.

    Returns
    -------
    Bunch or (ndarray, ndarray)
        ``data`` (N, height, width, 3) uint8, ``target`` (N,) ImageNet class indices,
        ``target_names`` (the ImageNet class name of each image) and ``image_names``;
        or ``(data, target)`` if `return_X_y`.

    Raises
    ------
    TypeError
        `return_X_y` is not a bool, or `target_size` not a pair of ints.
    ValueError
        `target_size` has not two sizes, or one below 1.

    Examples
    --------
    >>> from imgexplain.datasets import load_cats
    >>> cats = load_cats(target_size=(32, 32))
    >>> cats.data.shape, cats.target, cats.target_names
    ((1, 32, 32, 3), array([281]), ['tabby'])
    """
    size = check_size(target_size, "target_size")
    if not isinstance(return_X_y, (bool, np.bool_)):
        raise TypeError(f"return_X_y must be True or False; got {return_X_y!r}")
    data = np.stack([load_image(_skimage_photo(name), size) for name, _, _ in _CATS])
    target = np.array([index for _, index, _ in _CATS])
    if return_X_y:
        return data, target
    return Bunch(data=data, target=target, target_names=[label for _, _, label in _CATS],
                 image_names=[name for name, _, _ in _CATS])


def load_samples(target_size: tuple[int, int] | None = (224, 224),
                 names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """scikit-image's sample photographs as RGB uint8 arrays, by name.

    The photographs: astronaut, camera (grey), chelsea (a cat), coffee, coins (grey), horse (a
    black silhouette on white, not a photograph), hubble_deep_field, immunohistochemistry, moon
    (grey), motorcycle (the left view of ``stereo_motorcycle``), retina, rocket. Grey images are
    returned as RGB.

    Parameters
    ----------
    target_size : (int, int) or None
        (height, width) to resize to with `resize_image`; None keeps each image's own size.
    names : sequence of str, optional
        Which images to load; all of them by default.

    Returns
    -------
    dict of str to ndarray
        Each name's (height, width, 3) uint8 image, in the order of `names`.

    Raises
    ------
    TypeError
        `names` is not a sequence of str.
    ValueError
        An unknown name, or `target_size` is neither None nor a pair of positive ints.

    Examples
    --------
    >>> from imgexplain.datasets import load_samples
    >>> samples = load_samples((64, 64), names=["coins", "chelsea"])
    >>> list(samples), samples["coins"].shape
    (['coins', 'chelsea'], (64, 64, 3))
    """
    size = check_size(target_size, "target_size", allow_none=True)
    if names is None:
        names = _SAMPLES
    else:
        if isinstance(names, str) or not isinstance(names, Iterable):
            raise TypeError(f"names must be a sequence of image names, e.g. ['chelsea']; got {names!r}")
        names = list(names)
        if not all(isinstance(name, str) for name in names):
            raise TypeError(f"names must be a sequence of image names, e.g. ['chelsea']; got {names!r}")
    unknown = [name for name in names if name not in _SAMPLES]
    if unknown:
        raise ValueError(f"names has unknown images {unknown}; the samples are {list(_SAMPLES)}")
    return {name: load_image(_skimage_photo(name), size) for name in names}
