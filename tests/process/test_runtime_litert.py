"""The LiteRT runtime end to end: conversion, verification, the cache, the fallback, and a served model without TensorFlow.

Slow (TensorFlow converts the models). A tiny ``.keras`` model made here keeps
the conversions short; one test converts the default EfficientNet-Lite0 into a
private cache and checks the real photos still classify as before.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from model_backend.client import BackendClient
from model_backend.settings import ModelSettings
from tests.support.backend import BackendProcess, start_backend, stop_backend
from tools import processes

pytestmark = pytest.mark.slow

LABELS = ("red", "green", "blue")

#: ``python -m model_backend serve ...`` with one line added at exit: whether TensorFlow was ever imported
SERVE_AND_REPORT = (
    "import atexit, runpy, sys\n"
    "atexit.register(lambda: print('TENSORFLOW_IMPORTED=%s' % ('tensorflow' in sys.modules), flush=True))\n"
    "sys.argv = ['model_backend', *sys.argv[1:]]\n"
    "runpy.run_module('model_backend', run_name='__main__', alter_sys=True)\n"
)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> tuple[Path, Path]:
    """A small trained-looking .keras classifier (32x32 RGB -> 3 classes, softmax) and its labels file."""
    from model_backend.models.tf_runtime import import_keras

    keras = import_keras()
    folder = tmp_path_factory.mktemp("tiny")
    keras.utils.set_random_seed(7)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(len(LABELS), activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    path = folder / "tiny.keras"
    model.save(path)
    labels = folder / "labels.txt"
    labels.write_text("\n".join(LABELS) + "\n", encoding="utf-8")
    return path, labels


def tiny_settings(tiny_model, cache_dir: Path, runtime: str = "auto") -> ModelSettings:
    path, labels = tiny_model
    return ModelSettings(name=str(path), labels=labels, preprocess="unit", cache_dir=cache_dir, runtime=runtime)


def test_a_keras_file_converts_verifies_and_predicts_like_keras(tiny_model, tmp_path, capsys) -> None:
    from model_backend.models import build_model
    from model_backend.models.runtimes import load_classifier

    model = load_classifier(tiny_settings(tiny_model, tmp_path))
    assert "Saved artifact" not in capsys.readouterr().out  # the converter's SavedModel listing stays out of stdout
    assert model.runtime == "litert"
    assert "converted and verified" in model.runtime_reason
    assert model.input_size == (32, 32)
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".json", ".tflite"]  # no temporary file left
    record = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert record["verified"] is True

    keras_model = build_model(tiny_settings(tiny_model, tmp_path, "tensorflow"))
    keras_model.setup()
    images = np.random.default_rng(1).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    batch = np.stack([model.preprocess(image) for image in images])
    np.testing.assert_allclose(model.predict(batch), keras_model.predict(batch), atol=1e-5)
    np.testing.assert_allclose(model.predict(batch[:1]), keras_model.predict(batch[:1]), atol=1e-5)  # another batch size

    again = load_classifier(tiny_settings(tiny_model, tmp_path))
    assert again.runtime == "litert"
    assert again.runtime_reason.startswith("cached LiteRT model verified")


def test_a_failed_verification_falls_back_to_tensorflow_and_is_remembered(tiny_model, tmp_path, monkeypatch, caplog) -> None:
    from model_backend.models import conversion, runtimes

    monkeypatch.setattr(conversion, "verify", lambda *a, **k: conversion.Verification(False, 8, 0.5, "largest probability difference 5.00e-01 > 1e-04"))
    model = runtimes.load_classifier(tiny_settings(tiny_model, tmp_path))
    assert model.runtime == "tensorflow"
    assert "did not verify" in model.runtime_reason
    assert "did not verify" in caplog.text
    assert [p.suffix for p in tmp_path.iterdir()] == [".json"]  # no unverified flatbuffer kept

    def no_conversion(_model):
        raise AssertionError("converted again although a failed verification was recorded")

    monkeypatch.setattr(conversion, "convert_keras_model", no_conversion)
    again = runtimes.load_classifier(tiny_settings(tiny_model, tmp_path))
    assert again.runtime == "tensorflow"
    assert "an earlier conversion did not verify" in again.runtime_reason


def test_runtime_tensorflow_never_converts(tiny_model, tmp_path) -> None:
    from model_backend.models.runtimes import load_classifier

    model = load_classifier(tiny_settings(tiny_model, tmp_path, "tensorflow"))
    assert model.runtime == "tensorflow"
    assert list(tmp_path.iterdir()) == []


def test_efficientnet_lite0_on_litert_classifies_the_photos_as_before(tmp_path, chelsea_png, coffee_png) -> None:
    from model_backend.imaging import decode_image
    from model_backend.models.runtimes import load_classifier

    model = load_classifier(ModelSettings(cache_dir=tmp_path))
    assert model.runtime == "litert"
    tops = []
    for png in (chelsea_png, coffee_png):
        probabilities = model.predict(model.preprocess(decode_image(png, model.input_size))[None])[0]
        tops.append(model.top_k(probabilities, 1)[0])
    assert [top["label"] for top in tops] == ["Egyptian cat", "espresso"]
    assert tops[0]["p"] == pytest.approx(0.80, abs=0.03)
    assert tops[1]["p"] == pytest.approx(0.86, abs=0.03)


def _serve(tmp_path: Path, name: str, *args: str) -> BackendProcess:
    return start_backend(tmp_path / f"{name}.log", *args, env=processes.tool_env(), launcher=("-c", SERVE_AND_REPORT), name=name)


def test_serve_converts_once_then_serves_without_importing_tensorflow(tiny_model, tmp_path, chelsea_png) -> None:
    path, labels = tiny_model
    args = ("--model", str(path), "--labels", str(labels), "--preprocess", "unit", "--cache-dir", str(tmp_path / "cache"), "--max-batch", "2")
    runs = []
    for name in ("first", "second"):
        backend = _serve(tmp_path, name, *args)
        try:
            with BackendClient(backend.client_settings) as client:
                info = client.info()
                reply = client.classify(chelsea_png, top_k=3)
        finally:
            assert stop_backend(backend) == 0
        runs.append((info, reply, backend.log_text()))

    (first_info, first_reply, first_log), (second_info, second_reply, second_log) = runs
    assert first_info["runtime"] == second_info["runtime"] == "litert"
    assert "converted and verified" in first_info["runtime_reason"]
    assert second_info["runtime_reason"].startswith("cached LiteRT model verified")
    assert "TENSORFLOW_IMPORTED=True" in first_log
    assert "TENSORFLOW_IMPORTED=False" in second_log
    assert [p["label"] for p in second_reply["predictions"]] == [p["label"] for p in first_reply["predictions"]]
    assert {p["label"] for p in second_reply["predictions"]} == set(LABELS)
    assert "tensorflow" in sys.modules  # this test process built the model (why the test is slow)
