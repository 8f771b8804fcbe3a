"""The runtime layer without TensorFlow: the --runtime setting, the verification rule, the cache key and record."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from model_backend.models import build_model
from model_backend.models import runtimes
from model_backend.models.conversion import MAX_PROBABILITY_DIFFERENCE, compare
from model_backend.models.litert_runtime import cpu_count, litert_threads
from model_backend.settings import ModelSettings, SettingsError, add_model_arguments, model_settings_from


def test_runtime_defaults_to_auto_and_reads_flag_then_environment() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    assert model_settings_from(parser.parse_args([]), environ={}).runtime == "auto"
    assert model_settings_from(parser.parse_args([]), environ={"WARMSERVE_RUNTIME": "tensorflow"}).runtime == "tensorflow"
    assert model_settings_from(parser.parse_args(["--runtime", "litert"]), environ={"WARMSERVE_RUNTIME": "tensorflow"}).runtime == "litert"
    with pytest.raises(SystemExit):
        parser.parse_args(["--runtime", "onnx"])


def test_an_unknown_runtime_in_the_environment_says_which_are_allowed() -> None:
    with pytest.raises(SettingsError, match="auto, litert, tensorflow"):
        model_settings_from({}, environ={"WARMSERVE_RUNTIME": "gpu"})


def probabilities(rows: int = 3, classes: int = 10, seed: int = 0) -> np.ndarray:
    logits = np.random.default_rng(seed).normal(size=(rows, classes))
    exp = np.exp(logits)
    return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


def test_verification_passes_on_tiny_differences() -> None:
    reference = probabilities()
    result = compare(reference, reference + 1e-7)
    assert result.passed
    assert "same top-5 on 3 images" in result.reason


def test_verification_fails_on_a_large_difference_and_says_how_large() -> None:
    reference = probabilities()
    candidate = reference.copy()
    candidate[0, int(np.argmin(reference[0]))] += 3 * MAX_PROBABILITY_DIFFERENCE
    result = compare(reference, candidate)
    assert not result.passed
    assert "largest probability difference 3.00e-04" in result.reason


def test_verification_fails_when_the_top_5_order_changes() -> None:
    reference = probabilities()
    candidate = reference.copy()
    order = np.argsort(-reference[1])
    candidate[1, order[0]], candidate[1, order[1]] = reference[1, order[1]], reference[1, order[0]]
    result = compare(reference, candidate)
    assert not result.passed
    assert "top-5 differs on verification image 1 at rank 1" in result.reason


def test_verification_accepts_a_swap_between_tied_classes() -> None:
    reference = np.array([[0.4, 0.3, 0.3, 0.0]], dtype=np.float32)
    candidate = np.array([[0.4, 0.3000001, 0.3, 0.0]], dtype=np.float32)
    candidate_swapped = np.array([[0.4, 0.2999999, 0.3000001, 0.0]], dtype=np.float32)
    assert compare(reference, candidate).passed
    assert compare(reference, candidate_swapped).passed


def test_litert_threads_follow_intra_op_threads_with_zero_meaning_all_cores() -> None:
    assert litert_threads(1) == 1
    assert litert_threads(0) == cpu_count() >= 1


def test_cache_key_changes_with_the_weights_and_the_tensorflow_version(tmp_path, monkeypatch) -> None:
    weights = tmp_path / "model.keras"
    weights.write_bytes(b"weights one")
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\n")
    spec = build_model(ModelSettings(name=str(weights), labels=labels, cache_dir=tmp_path / "cache"))
    key, tflite, record = runtimes.cache_paths(spec, weights, tmp_path / "cache")
    assert tflite.parent == record.parent == tmp_path / "cache"
    assert tflite.name.startswith("model-") and tflite.suffix == ".tflite" and record.suffix == ".json"
    assert runtimes.cache_paths(spec, weights, tmp_path / "cache")[0] == key  # stable

    weights.write_bytes(b"weights two")
    changed_weights = runtimes.cache_paths(spec, weights, tmp_path / "cache")[0]
    monkeypatch.setattr(runtimes, "tensorflow_version", lambda: "tensorflow-cpu==9.9.9")
    changed_tensorflow = runtimes.cache_paths(spec, weights, tmp_path / "cache")[0]
    assert len({key, changed_weights, changed_tensorflow}) == 3


def test_a_record_for_another_key_or_a_damaged_record_is_ignored(tmp_path) -> None:
    path = tmp_path / "m.json"
    runtimes.write_atomically(path, json.dumps({"key": "abc", "verified": True}).encode())
    assert runtimes.read_record(path, "abc") == {"key": "abc", "verified": True}
    assert runtimes.read_record(path, "other") is None
    path.write_text("{not json")
    assert runtimes.read_record(path, "abc") is None
    assert runtimes.read_record(tmp_path / "missing.json", "abc") is None
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]  # no temporary file left


def test_the_tensorflow_version_and_gpu_check_do_not_import_tensorflow() -> None:
    before = "tensorflow" in sys.modules  # a slow test earlier in the session may have imported it
    assert runtimes.tensorflow_version().split("==")[0] in runtimes.TENSORFLOW_DISTRIBUTIONS
    runtimes.gpu_visible()
    assert ("tensorflow" in sys.modules) == before


def test_random_weights_have_no_weights_file_to_key_a_cache_on(tmp_path) -> None:
    spec = build_model(ModelSettings(weights="random", cache_dir=tmp_path))
    assert runtimes.weights_file(spec) is None
