"""The model families with TensorFlow: real-weights predictions, the weights cache, custom models, ResNet50.

Preprocessing and the registry without TensorFlow are in tests/unit/test_models.py.

TensorFlow models are built once per module (module-scoped fixtures); the
real-weights test feeds scikit-image's bundled photos through the same path
the server uses: PNG bytes -> imaging.decode_image -> preprocess -> predict.
"""

from __future__ import annotations

import logging
import os
import socket
import warnings
from pathlib import Path

import numpy as np
import pytest

from model_backend.errors import ModelLoadError
from model_backend.imaging import decode_image
from model_backend.models import build_model
from model_backend.models.efficientnet_lite import cache_path_for, packaged_checkpoint
from model_backend.settings import ModelSettings
from tests.support.helpers import CAT_CLASSES, full_range_image, png_bytes

EGYPTIAN_CAT = 285
COFFEE_CLASSES = {967, 968, 504}  # espresso, cup, coffee mug

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lite0_cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("weights-cache")


@pytest.fixture(scope="module")
def lite0(lite0_cache_dir):
    model = build_model(ModelSettings(cache_dir=lite0_cache_dir))
    model.setup()
    return model


@pytest.fixture(scope="module")
def photos_batch(lite0) -> np.ndarray:
    from skimage import data

    arrays = [decode_image(png_bytes(photo), lite0.input_size) for photo in (data.chelsea(), data.coffee())]
    return np.stack([lite0.preprocess(array) for array in arrays])


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """Two small .keras files (softmax and logits outputs) and label files of 3 and 2 names."""
    from model_backend.models.tf_runtime import import_keras

    keras = import_keras()
    warnings.filterwarnings("ignore", message=".*__array__ implementation doesn't accept a copy keyword")  # Keras' save()
    folder = tmp_path_factory.mktemp("custom")
    paths = {}
    for name, activation in (("probabilities", "softmax"), ("logits", None)):
        inputs = keras.Input((32, 32, 3))
        x = keras.layers.Rescaling(1 / 255)(inputs)
        x = keras.layers.GlobalAveragePooling2D()(x)
        outputs = keras.layers.Dense(3, activation=activation, bias_initializer="zeros")(x)
        model = keras.Model(inputs, outputs)
        paths[name] = folder / f"{name}.keras"
        model.save(paths[name])
    flat = keras.Sequential([keras.Input((10,)), keras.layers.Dense(3, activation="softmax")])
    paths["not-an-image-model"] = folder / "flat.keras"
    flat.save(paths["not-an-image-model"])
    paths["labels3"] = folder / "labels3.txt"
    paths["labels3"].write_text("  cat\n\ndog \n\n  fish\n", encoding="utf-8")
    paths["labels2"] = folder / "labels2.txt"
    paths["labels2"].write_text("cat\ndog\n", encoding="utf-8")
    paths["garbage"] = folder / "garbage.keras"
    paths["garbage"].write_bytes(b"this is not a zip file")
    return paths


def custom_settings(model: Path, labels: Path | None, preprocess: str = "raw") -> ModelSettings:
    return ModelSettings(name=str(model), labels=labels, preprocess=preprocess)


# --- efficientnet-lite0 with the real weights ------------------------------------------------------


def test_lite0_classifies_the_bundled_photos(lite0, photos_batch):
    probabilities = lite0.predict(photos_batch)

    assert probabilities.shape == (2, 1000)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
    chelsea, coffee = (int(np.argmax(row)) for row in probabilities)
    assert chelsea in CAT_CLASSES
    assert coffee in COFFEE_CLASSES
    assert lite0.class_names[EGYPTIAN_CAT] == "Egyptian cat"
    assert lite0.class_names[967] == "espresso"
    assert lite0.top_k(probabilities[0], 1)[0]["label"] in {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}


def test_lite0_caches_converted_weights_and_reuses_them(lite0, lite0_cache_dir, photos_batch):
    assert lite0.weights_source == "converted"
    assert lite0.cache_path == cache_path_for(packaged_checkpoint(), lite0_cache_dir)
    assert lite0.cache_path.is_file()
    assert [p.name for p in lite0_cache_dir.iterdir()] == [lite0.cache_path.name]  # no temporary file left

    again = build_model(ModelSettings(cache_dir=lite0_cache_dir))
    again.setup()

    assert again.weights_source == "cache"
    np.testing.assert_allclose(again.predict(photos_batch), lite0.predict(photos_batch), atol=1e-6)


def test_lite0_damaged_cache_is_converted_again(tmp_path, lite0, photos_batch):
    damaged = cache_path_for(packaged_checkpoint(), tmp_path)
    damaged.write_bytes(b"half a file")
    model = build_model(ModelSettings(cache_dir=tmp_path))
    model.setup()
    assert model.weights_source == "converted"
    assert damaged.stat().st_size > 1_000_000
    np.testing.assert_allclose(model.predict(photos_batch[:1]), lite0.predict(photos_batch[:1]), atol=1e-6)


def test_predict_checks_the_batch_shape(lite0):
    with pytest.raises(ValueError, match=r"Expected a float32 batch of shape \(n, 224, 224, 3\)"):
        lite0.predict(np.zeros((1, 100, 100, 3), dtype=np.float32))


def test_configure_tensorflow_twice_is_safe(lite0, caplog):
    from model_backend.models.tf_runtime import configure_tensorflow

    with pytest.raises(ValueError, match="Received: intra_op_threads=-1"):
        configure_tensorflow(-1, 0)
    import tensorflow as tf

    current = (tf.config.threading.get_intra_op_parallelism_threads(), tf.config.threading.get_inter_op_parallelism_threads())
    configure_tensorflow(*current)  # same values: a no-op
    with caplog.at_level(logging.WARNING):
        configure_tensorflow(current[0] + 3, current[1] + 3)  # TF already ran: kept, with a warning
    assert "already running" in caplog.text


# --- a user's own .keras model ---------------------------------------------------------------------


def test_custom_model_predicts_probabilities(tiny_models):
    model = build_model(custom_settings(tiny_models["probabilities"], tiny_models["labels3"]))
    model.setup()

    assert model.input_size == (32, 32)
    assert list(model.class_names) == ["cat", "dog", "fish"]
    assert model.applies_softmax is False
    batch = np.stack([model.preprocess(full_range_image(32, 32)), model.preprocess(np.zeros((32, 32, 3), np.uint8))])
    probabilities = model.predict(batch)
    assert probabilities.shape == (2, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(probabilities, model.model(batch).numpy(), atol=1e-6)


def test_custom_logits_model_gets_a_softmax(tiny_models, caplog):
    model = build_model(custom_settings(tiny_models["logits"], tiny_models["labels3"], preprocess="unit"))
    with caplog.at_level(logging.INFO):
        model.setup()
    assert model.applies_softmax is True
    assert "applying softmax" in caplog.text
    batch = model.preprocess(full_range_image(32, 32))[None]
    logits = model.model(batch).numpy()
    probabilities = model.predict(batch)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(probabilities, np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True), atol=1e-6)


def test_custom_model_errors_name_the_problem(tiny_models, tmp_path):
    wrong_count = build_model(custom_settings(tiny_models["probabilities"], tiny_models["labels2"]))
    with pytest.raises(ModelLoadError, match=r"Expected as many labels as the model has outputs \(3\). Received: 2 labels"):
        wrong_count.setup()

    missing = tmp_path / "nowhere.keras"
    with pytest.raises(ModelLoadError, match="nowhere.keras"):
        build_model(custom_settings(missing, tiny_models["labels3"]))
    with pytest.raises(ModelLoadError, match="missing-labels.txt"):
        build_model(custom_settings(tiny_models["probabilities"], tmp_path / "missing-labels.txt"))
    with pytest.raises(ModelLoadError, match="--labels"):
        build_model(custom_settings(tiny_models["probabilities"], None))

    garbage = build_model(custom_settings(tiny_models["garbage"], tiny_models["labels3"]))
    with pytest.raises(ModelLoadError, match="garbage.keras"):
        garbage.setup()

    flat = build_model(custom_settings(tiny_models["not-an-image-model"], tiny_models["labels3"]))
    with pytest.raises(ModelLoadError, match=r"Expected one image input of shape \(None, height, width, 3\)"):
        flat.setup()


# --- resnet50 ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_resnet50_random_weights_predicts_probabilities(caplog):
    model = build_model(ModelSettings(name="resnet50", weights="random"))
    with caplog.at_level(logging.WARNING):
        model.setup()
    assert "meaningless" in caplog.text
    probabilities = model.predict(np.stack([model.preprocess(full_range_image(224, 224))] * 2))
    assert probabilities.shape == (2, 1000)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)


def keras_cached_resnet_weights() -> list[Path]:
    from model_backend.models.resnet50 import WEIGHTS_FILE

    homes = [os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras"), "/tmp/.keras"]
    return [Path(home) / "models" / WEIGHTS_FILE for home in homes if (Path(home) / "models" / WEIGHTS_FILE).exists()]


def test_resnet50_offline_without_weights_says_what_to_do(monkeypatch):
    if keras_cached_resnet_weights():
        pytest.skip(f"ResNet50 weights are in the Keras cache here: {keras_cached_resnet_weights()}")

    def offline(*args, **kwargs):  # keep CI offline even where it is not: never download 100 MB in a test
        raise ConnectionRefusedError(111, "Connection refused (network disabled by the test)")

    monkeypatch.setattr(socket, "create_connection", offline)
    model = build_model(ModelSettings(name="resnet50"))
    with pytest.raises(ModelLoadError) as caught:
        model.setup()
    message = str(caught.value)
    assert "--weights" in message and "efficientnet-lite0" in message and "resnet50_weights_tf_dim_ordering_tf_kernels.h5" in message
    assert "\n" not in message and caught.value.__suppress_context__


def test_resnet50_missing_weights_file_names_it(tmp_path):
    model = build_model(ModelSettings(name="resnet50", weights=str(tmp_path / "resnet.h5")))
    with pytest.raises(ModelLoadError, match="resnet.h5"):
        model.setup()
