"""The few OpenCV calls pytorch-grad-cam's tests make, on Pillow and numpy; ``imread`` of the tests'
``examples/both.png`` (a cat and a dog) gives scikit-image's cat photograph, BGR as OpenCV reads it."""
import numpy as np
from PIL import Image
from skimage import data

COLOR_BGR2RGB = 4


def imread(path):
    return np.ascontiguousarray(data.chelsea()[..., ::-1])


def resize(image, size):
    width, height = size
    return np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))


def cvtColor(image, code):
    return np.ascontiguousarray(image[..., ::-1])
