"""The model families without TensorFlow: preprocessing modes, building a family without setting it up, the registry,
the weights cache's name.

Building and running the models (TensorFlow) is in tests/process/test_models.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from model_backend.errors import ModelLoadError
from model_backend.models import MODEL_NAMES, build_model
from model_backend.models.efficientnet_lite import cache_path_for
from model_backend.models.preprocessing import PREPROCESSORS
from model_backend.settings import ModelSettings
from tests.support.helpers import full_range_image


PREPROCESS_TABLE = [
    # mode, low, high (over an image that holds 0 and 255 in every channel)
    ("raw", 0.0, 255.0),
    ("unit", 0.0, 1.0),
    ("tf", -1.0, 1.0),
    ("caffe", -123.68, 255 - 103.939),
    ("torch", (0 - 0.485) / 0.229, (1 - 0.406) / 0.225),
]


@pytest.mark.parametrize(("mode", "low", "high"), PREPROCESS_TABLE)
def test_preprocess_modes_dtype_shape_and_range(mode, low, high):
    image = full_range_image(24, 20)
    out = PREPROCESSORS[mode](image)
    assert out.dtype == np.float32
    assert out.shape == image.shape
    assert out.min() == pytest.approx(low, abs=1e-4)
    assert out.max() == pytest.approx(high, abs=1e-4)


@pytest.mark.parametrize(("name", "low", "high"), [("efficientnet-lite0", -2.1179, 2.64), ("resnet50", -123.68, 151.061)])
def test_built_in_families_preprocess_without_setup(name, low, high, tmp_path):
    model = build_model(ModelSettings(name=name, cache_dir=tmp_path))
    image = full_range_image(*model.input_size)
    out = model.preprocess(image)
    assert model.input_size == (224, 224)
    assert out.dtype == np.float32 and out.shape == (224, 224, 3)
    assert out.min() == pytest.approx(low, abs=1e-3) and out.max() == pytest.approx(high, abs=1e-3)
    with pytest.raises(ValueError, match="Expected an RGB uint8 array of shape"):
        model.preprocess(image[:100])


ARITHMETIC = {  # the modes as Keras' preprocess_input writes them: the lookup tables must give the same numbers
    "raw": lambda x: x,
    "unit": lambda x: x / 255.0,
    "tf": lambda x: x / 127.5 - 1.0,
    "caffe": lambda x: x[..., ::-1] - np.array([103.939, 116.779, 123.68]),
    "torch": lambda x: (x / 255.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225]),
}


@pytest.mark.parametrize("mode", sorted(ARITHMETIC))
def test_preprocess_tables_match_the_arithmetic_for_uint8_and_float_batches(mode):
    image = np.random.default_rng(3).integers(0, 256, (2, 9, 7, 3), dtype=np.uint8)
    expected = ARITHMETIC[mode](image.astype(np.float64))
    for given in (image, image.astype(np.float32), image[0]):
        out = PREPROCESSORS[mode](given)
        assert out.dtype == np.float32 and out.shape == given.shape
        np.testing.assert_allclose(out, expected if given.ndim == 4 else expected[0], atol=2e-6, rtol=1e-6)


def test_caffe_mode_swaps_to_bgr():
    red = np.zeros((2, 2, 3), dtype=np.uint8)
    red[..., 0] = 255
    out = PREPROCESSORS["caffe"](red)
    np.testing.assert_allclose(out[0, 0], [-103.939, -116.779, 255 - 123.68], atol=1e-4)


def test_registry_names_and_unknown_model():
    assert MODEL_NAMES == ("efficientnet-lite0", "resnet50")
    with pytest.raises(ModelLoadError) as caught:
        build_model(ModelSettings(name="x"))
    assert str(caught.value) == "Unknown model 'x'. Expected one of efficientnet-lite0, resnet50, or a path to a .keras file"


def test_cache_name_follows_the_checkpoint(tmp_path):
    first, second = tmp_path / "a.pth", tmp_path / "b.pth"
    first.write_bytes(b"1234")
    second.write_bytes(b"12345")
    assert cache_path_for(first, tmp_path) != cache_path_for(second, tmp_path)
    assert cache_path_for(first, tmp_path) == cache_path_for(first, tmp_path)
    assert cache_path_for(first, tmp_path).name.endswith(".weights.h5")
