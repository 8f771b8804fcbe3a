"""Keras -> LiteRT: convert a set-up Keras classifier to a ``.tflite`` flatbuffer and verify it against Keras.

Needs TensorFlow (the converter is ``tf.lite.TFLiteConverter.from_keras_model``);
only :mod:`.runtimes` calls it, on a first start or after the weights or the
TensorFlow version changed. Verification runs both on the example photos
(``assets/examples/*.jpg``, decoded as the server decodes) and a few seeded
random images: the same top-5 (a swap between classes whose Keras
probabilities tie within :data:`TIE_TOLERANCE` is not a difference) and a
largest probability difference of at most :data:`MAX_PROBABILITY_DIFFERENCE`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .base import ImageClassifier
from .tf_runtime import import_tensorflow

log = logging.getLogger(__name__)

MAX_PROBABILITY_DIFFERENCE = 1e-4
TIE_TOLERANCE = 1e-6
TOP_K = 5
RANDOM_IMAGES = 3
RANDOM_SEED = 20240917
EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "assets" / "examples"


class ConversionError(Exception):
    """The converter refused the model (the message says why)."""


@dataclass(frozen=True)
class Verification:
    """How the LiteRT outputs compare with Keras' on the verification images."""

    passed: bool
    images: int
    max_difference: float
    reason: str


def convert_keras_model(model) -> bytes:
    """The ``.tflite`` flatbuffer of a Keras model (float32, default optimisations off)."""
    tf = import_tensorflow()
    started = time.perf_counter()
    # The converter exports a SavedModel first, and Keras prints the whole signature (one line per captured
    # variable, hundreds) to stdout: keep that, and TensorFlow's INFO lines, out of the backend's output.
    printed = io.StringIO()
    tf_logger = logging.getLogger("tensorflow")
    level = tf_logger.level
    tf_logger.setLevel(max(level, logging.WARNING))
    try:
        with contextlib.redirect_stdout(printed):
            content = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    except Exception as exc:  # the converter raises ConverterError, ValueError, RuntimeError...
        raise ConversionError(f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}") from None
    finally:
        tf_logger.setLevel(level)
        if printed.getvalue():
            log.debug("The converter printed:\n%s", printed.getvalue().rstrip())
    log.info("Converted to LiteRT in %.1f s (%.1f MB)", time.perf_counter() - started, len(content) / 1e6)
    return bytes(content)


def verification_images(input_size: tuple[int, int], examples_dir: Path = EXAMPLES_DIR) -> list[np.ndarray]:
    """The example photos at ``input_size`` (RGB uint8) plus :data:`RANDOM_IMAGES` seeded random images."""
    from ..errors import BadImage, TooLarge
    from ..imaging import decode_image

    images = []
    for path in sorted(examples_dir.glob("*.jpg")):
        try:
            images.append(decode_image(path.read_bytes(), input_size))
        except (OSError, BadImage, TooLarge) as exc:
            log.warning("Skipping verification photo %s: %s", path, exc)
    rng = np.random.default_rng(RANDOM_SEED)
    images.extend(rng.integers(0, 256, (*input_size, 3), dtype=np.uint8) for _ in range(RANDOM_IMAGES))
    return images


def compare(reference: np.ndarray, candidate: np.ndarray) -> Verification:
    """Verify ``candidate`` probabilities (n, classes) against ``reference``: same top-5, max difference <= 1e-4."""
    if reference.shape != candidate.shape:
        return Verification(False, len(reference), float("inf"), f"output shapes differ: Keras {reference.shape}, LiteRT {candidate.shape}")
    difference = float(np.max(np.abs(reference.astype(np.float64) - candidate.astype(np.float64)))) if reference.size else 0.0
    k = min(TOP_K, reference.shape[-1])
    for row, (ref, cand) in enumerate(zip(reference, candidate)):
        ref_top = np.argsort(-ref, kind="stable")[:k]
        cand_top = np.argsort(-cand, kind="stable")[:k]
        for rank, (expected, got) in enumerate(zip(ref_top, cand_top)):
            if expected != got and abs(float(ref[expected]) - float(ref[got])) > TIE_TOLERANCE:
                return Verification(False, len(reference), difference,
                                    f"top-{k} differs on verification image {row} at rank {rank + 1}: Keras {int(expected)}, LiteRT {int(got)}")
    if not difference <= MAX_PROBABILITY_DIFFERENCE:
        return Verification(False, len(reference), difference,
                            f"largest probability difference {difference:.2e} > {MAX_PROBABILITY_DIFFERENCE:.0e}")
    return Verification(True, len(reference), difference,
                        f"same top-{k} on {len(reference)} images, largest probability difference {difference:.1e}")


def verify(keras_classifier: ImageClassifier, litert_classifier: ImageClassifier, examples_dir: Path = EXAMPLES_DIR) -> Verification:
    """Run both classifiers on the verification images and :func:`compare` their probabilities."""
    images = verification_images(keras_classifier.input_size, examples_dir)
    batch = np.stack([keras_classifier.preprocess(image) for image in images])
    return compare(keras_classifier.predict(batch), litert_classifier.predict(batch))
