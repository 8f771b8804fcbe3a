"""The runtime under the model interface: LiteRT (XNNPACK) on CPU when a converted model verifies, else TensorFlow.

``load_classifier(model_settings, intra_op_threads, inter_op_threads)``
returns a set-up :class:`~.base.ImageClassifier` with two more attributes,
``runtime`` ("litert" or "tensorflow") and ``runtime_reason`` (why), which
the server's ``info`` reports and the log shows.

``--runtime``:

* ``tensorflow``: the Keras model through a compiled ``tf.function``.
* ``litert``: the converted model; a conversion failure is a ModelLoadError,
  a failed verification a warning (it was asked for).
* ``auto`` (default): LiteRT when the model converts and verifies, TensorFlow
  otherwise (a GPU TensorFlow could use, random weights, a model the
  converter refuses, a failed verification), with a warning that says why.

The cache (in ``cache_dir``, next to the converted weights) holds
``<model>-<key>.tflite`` and ``<model>-<key>.json`` (the verification result),
both written atomically. The key is a hash of the weights file's SHA-256, the
model's name and class, and the TensorFlow (converter) version, so new
weights or a new TensorFlow convert again. A start that finds a verified
cache entry loads the flatbuffer with ``ai-edge-litert`` and never imports
TensorFlow; one that finds a failed verification recorded uses TensorFlow
without converting again.
"""

from __future__ import annotations

import glob
import hashlib
import importlib.metadata
import json
import logging
import os
import re
import sys
import time
import uuid
from pathlib import Path

from ..errors import ModelLoadError
from ..settings import ModelSettings
from . import build_model
from .base import ImageClassifier
from .litert_runtime import LiteRTClassifier, litert_threads

log = logging.getLogger(__name__)

#: bump when conversion or verification changes, so old cache entries are not trusted
CACHE_FORMAT = 1
TENSORFLOW_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tf-nightly", "tensorflow-macos")


def tensorflow_version() -> str:
    """The installed TensorFlow's version, read from package metadata (does not import TensorFlow)."""
    for distribution in TENSORFLOW_DISTRIBUTIONS:
        try:
            return f"{distribution}=={importlib.metadata.version(distribution)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return "tensorflow==unknown"


def gpu_visible() -> bool:
    """Whether TensorFlow could run on a GPU here. Asks TensorFlow only if it is already imported."""
    if "tensorflow" in sys.modules:
        return bool(sys.modules["tensorflow"].config.list_physical_devices("GPU"))
    if tensorflow_version().startswith("tensorflow-cpu=="):
        return False  # a CPU-only build never uses a GPU
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    return bool(glob.glob("/dev/nvidia[0-9]*"))


def weights_file(classifier: ImageClassifier) -> Path | None:
    """The file the classifier's weights come from (None: random weights, or not downloaded yet)."""
    from .custom import CustomKerasClassifier
    from .efficientnet_lite import EfficientNetLite0, packaged_checkpoint
    from .resnet50 import WEIGHTS_FILE, ResNet50

    settings: ModelSettings = classifier.settings  # type: ignore[attr-defined]
    if isinstance(classifier, CustomKerasClassifier):
        return classifier.path
    if settings.weights == "random":
        return None
    if isinstance(classifier, EfficientNetLite0):
        return Path(settings.weights).expanduser() if settings.weights else packaged_checkpoint()
    if isinstance(classifier, ResNet50):
        if settings.weights not in (None, "imagenet"):
            return Path(settings.weights).expanduser()
        keras_home = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")
        for folder in (keras_home, Path("/tmp/.keras")):  # Keras falls back to /tmp/.keras when home is read-only
            if (folder / "models" / WEIGHTS_FILE).is_file():
                return folder / "models" / WEIGHTS_FILE
    return None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cache_paths(classifier: ImageClassifier, weights: Path, cache_dir: Path) -> tuple[str, Path, Path]:
    """(key, .tflite path, .json path) for this model, weights file and converter version."""
    parts = [str(CACHE_FORMAT), classifier.name, type(classifier).__name__, file_sha256(weights), tensorflow_version()]
    key = hashlib.sha256("\n".join(parts).encode()).hexdigest()
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(classifier.name).stem if classifier.name.endswith(".keras") else classifier.name)
    base = Path(cache_dir) / f"{stem}-{key[:16]}"
    return key, base.with_name(base.name + ".tflite"), base.with_name(base.name + ".json")


def write_atomically(path: Path, content: bytes) -> None:
    """Write to a temporary file beside ``path``, then rename: a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        temporary.write_bytes(content)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def read_record(path: Path, key: str) -> dict | None:
    """The cached verification record for ``key``, or None (missing, unreadable or for another key)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("key") == key else None


def _tag(classifier: ImageClassifier, runtime: str, reason: str) -> ImageClassifier:
    classifier.runtime = runtime  # type: ignore[attr-defined]
    classifier.runtime_reason = reason  # type: ignore[attr-defined]
    return classifier


def _litert(spec: ImageClassifier, content: bytes, threads: int, applies_softmax: bool) -> LiteRTClassifier:
    classifier = LiteRTClassifier(spec.name, spec.class_names, spec.preprocess_mode, content,  # type: ignore[attr-defined]
                                  num_threads=threads, applies_softmax=applies_softmax)
    classifier.setup()
    return classifier


def _tensorflow(spec: ImageClassifier, intra_op_threads: int, inter_op_threads: int) -> ImageClassifier:
    from .tf_runtime import configure_tensorflow

    if not getattr(spec, "_forward", None):
        configure_tensorflow(intra_op_threads, inter_op_threads)
        spec.setup()
    return spec


def load_classifier(settings: ModelSettings, intra_op_threads: int = 0, inter_op_threads: int = 0) -> ImageClassifier:
    """The set-up classifier on the runtime ``settings.runtime`` asks for, tagged with ``runtime`` and ``runtime_reason``."""
    started = time.perf_counter()
    spec = build_model(settings)
    mode = settings.runtime
    threads = litert_threads(intra_op_threads)
    if mode == "tensorflow":
        return _tag(_tensorflow(spec, intra_op_threads, inter_op_threads), "tensorflow", "asked for (--runtime tensorflow)")
    if mode == "auto" and gpu_visible():
        return _fallback(spec, "a GPU is visible: TensorFlow runs there", intra_op_threads, inter_op_threads)
    weights = weights_file(spec)
    if weights is None and settings.weights != "random" and settings.weights in (None, "imagenet"):
        _tensorflow(spec, intra_op_threads, inter_op_threads)  # e.g. ResNet50 downloads its weights first
        weights = weights_file(spec)
    if weights is None:
        if mode == "auto":
            return _fallback(spec, "random weights (timing only) are not converted", intra_op_threads, inter_op_threads)
        weights_key = None
    else:
        weights_key = cache_paths(spec, weights, settings.cache_dir)
    if weights_key is not None:
        key, tflite_path, record_path = weights_key
        record = read_record(record_path, key)
        if record is not None and record.get("verified") and tflite_path.is_file():
            try:
                classifier = _litert(spec, tflite_path.read_bytes(), threads, bool(record.get("applies_softmax")))
            except (OSError, ModelLoadError) as exc:
                log.warning("%s: ignoring the cached LiteRT model %s (%s); converting again.", spec.name, tflite_path, exc)
            else:
                reason = f"cached LiteRT model verified ({record.get('verification', '')}); {threads} threads"
                log.info("%s: LiteRT model loaded from cache %s in %.2f s", spec.name, tflite_path, time.perf_counter() - started)
                return _tag(classifier, "litert", reason)
        elif record is not None and not record.get("verified") and mode == "auto":
            return _fallback(spec, f"an earlier conversion did not verify ({record.get('verification', '')})", intra_op_threads, inter_op_threads)
    return _convert(spec, settings, weights_key, threads, intra_op_threads, inter_op_threads)


def _convert(spec: ImageClassifier, settings: ModelSettings, weights_key: tuple[str, Path, Path] | None, threads: int,
             intra_op_threads: int, inter_op_threads: int) -> ImageClassifier:
    """First start: convert the Keras model, verify it, cache both, and serve LiteRT if it verified."""
    from .conversion import ConversionError, convert_keras_model, verify

    _tensorflow(spec, intra_op_threads, inter_op_threads)
    applies_softmax = bool(getattr(spec, "applies_softmax", False))
    log.info("%s: converting to LiteRT (first start; cached afterwards)", spec.name)
    try:
        content = convert_keras_model(spec.model)  # type: ignore[attr-defined]
        candidate = _litert(spec, content, threads, applies_softmax)
    except (ConversionError, ModelLoadError) as exc:
        _record(weights_key, verified=False, verification=f"conversion failed: {exc}", applies_softmax=applies_softmax)
        if settings.runtime == "litert":
            raise ModelLoadError(f"Could not convert {spec.name} to LiteRT: {exc}. Use --runtime tensorflow or auto.") from None
        return _fallback(spec, f"LiteRT could not convert the model: {exc}", intra_op_threads, inter_op_threads)
    result = verify(spec, candidate)
    if weights_key is not None:
        try:
            if result.passed:
                write_atomically(weights_key[1], content)
            _record(weights_key, verified=result.passed, verification=result.reason, applies_softmax=applies_softmax)
        except OSError as exc:
            log.warning("%s: could not cache the LiteRT model in %s (%s); the next start converts again.", spec.name, settings.cache_dir, exc)
    if not result.passed:
        if settings.runtime == "litert":
            log.warning("%s: the LiteRT model did not verify (%s); serving it anyway (--runtime litert).", spec.name, result.reason)
            return _tag(candidate, "litert", f"asked for (--runtime litert); verification failed: {result.reason}")
        return _fallback(spec, f"the LiteRT model did not verify: {result.reason}", intra_op_threads, inter_op_threads)
    log.info("%s: LiteRT model verified: %s", spec.name, result.reason)
    spec.model = None  # type: ignore[attr-defined]  # free the Keras model: LiteRT serves from now on
    spec._forward = None  # type: ignore[attr-defined]
    return _tag(candidate, "litert", f"converted and verified ({result.reason}); {threads} threads")


def _record(weights_key: tuple[str, Path, Path] | None, **fields: object) -> None:
    if weights_key is None:
        return
    key, tflite_path, record_path = weights_key
    record = {"key": key, "tflite": tflite_path.name, "tensorflow": tensorflow_version(), "format": CACHE_FORMAT, **fields}
    try:
        write_atomically(record_path, json.dumps(record, indent=2).encode())
    except OSError as exc:
        log.warning("Could not record the LiteRT verification in %s: %s", record_path, exc)


def _fallback(spec: ImageClassifier, reason: str, intra_op_threads: int, inter_op_threads: int) -> ImageClassifier:
    log.warning("%s: serving on TensorFlow: %s", spec.name, reason)
    return _tag(_tensorflow(spec, intra_op_threads, inter_op_threads), "tensorflow", reason)
