"""Numpy versions of the usual image preprocessing modes (no TensorFlow: they run in decode threads).

Each function takes RGB ``uint8`` (..., h, w, 3) and returns ``float32`` of the
same shape, as Keras' ``imagenet_utils.preprocess_input`` modes do:

=========  =====================================================  ================
mode       what                                                   range
=========  =====================================================  ================
``raw``    pixel values as floats                                 0 .. 255
``unit``   ``x / 255``                                            0 .. 1
``tf``     ``x / 127.5 - 1``                                      -1 .. 1
``caffe``  RGB -> BGR, minus the ImageNet BGR mean                about -124 .. 152
``torch``  ``(x / 255 - mean) / std`` with ImageNet RGB mean/std  about -2.1 .. 2.6
=========  =====================================================  ================
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

IMAGENET_MEAN_RGB = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD_RGB = np.array([0.229, 0.224, 0.225], dtype=np.float32)
CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], dtype=np.float32)


def preprocess_raw(image: np.ndarray) -> np.ndarray:
    return np.asarray(image, dtype=np.float32)


def preprocess_unit(image: np.ndarray) -> np.ndarray:
    return np.asarray(image, dtype=np.float32) * np.float32(1.0 / 255.0)


def preprocess_tf(image: np.ndarray) -> np.ndarray:
    return np.asarray(image, dtype=np.float32) * np.float32(1.0 / 127.5) - np.float32(1.0)


def preprocess_caffe(image: np.ndarray) -> np.ndarray:
    return np.asarray(image, dtype=np.float32)[..., ::-1] - CAFFE_MEAN_BGR


def preprocess_torch(image: np.ndarray) -> np.ndarray:
    return (np.asarray(image, dtype=np.float32) * np.float32(1.0 / 255.0) - IMAGENET_MEAN_RGB) / IMAGENET_STD_RGB


PREPROCESSORS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "raw": preprocess_raw,
    "unit": preprocess_unit,
    "tf": preprocess_tf,
    "caffe": preprocess_caffe,
    "torch": preprocess_torch,
}


def check_image(image: np.ndarray, input_size: tuple[int, int]) -> None:
    """Raise ValueError unless ``image`` is an RGB array of shape (h, w, 3) at ``input_size``."""
    expected = (*input_size, 3)
    if not isinstance(image, np.ndarray) or image.shape != expected:
        shape = getattr(image, "shape", type(image).__name__)
        raise ValueError(f"Expected an RGB uint8 array of shape {expected}. Received: shape={shape}")
