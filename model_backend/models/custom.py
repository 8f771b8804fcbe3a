"""A user's own classifier: a ``.keras`` file plus a labels file (one class name a line).

* The model is loaded with ``keras.models.load_model(path, compile=False)``
  (Keras' safe mode stays on: a file with lambda layers is refused).
* Its input must be ``(None, h, w, 3)``; ``input_size`` is read from it.
* Its output must be ``(None, n)`` with ``n`` = the number of labels.
* ``settings.preprocess`` picks the numpy preprocessing (raw, unit, tf, caffe, torch).
* If the outputs are not probabilities (checked during setup on two probe
  images: any negative value, or rows not summing to 1), a softmax is applied
  after every forward pass, and logged at INFO.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelLoadError
from ..settings import ModelSettings
from .labels import read_labels_file
from .tf_runtime import KerasClassifier, import_keras

log = logging.getLogger(__name__)

MODEL_SUFFIX = ".keras"
#: a row "sums to 1" within this tolerance
PROBABILITY_TOLERANCE = 1e-3


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, numerically stable."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def looks_like_probabilities(outputs: np.ndarray) -> bool:
    """True when every value is >= 0 and every row sums to 1 (within PROBABILITY_TOLERANCE)."""
    return bool(np.all(outputs >= 0) and np.allclose(outputs.sum(axis=-1), 1.0, atol=PROBABILITY_TOLERANCE))


class CustomKerasClassifier(KerasClassifier):
    """A ``.keras`` model with a labels file; name = the model's path."""

    def __init__(self, settings: ModelSettings) -> None:
        self.path = Path(settings.name).expanduser()
        self.name = str(settings.name)
        if not self.path.is_file():
            raise ModelLoadError(f"Expected a Keras model file (.keras). Received: model={str(self.path)!r}, which does not exist.")
        if settings.labels is None:
            raise ModelLoadError(f"Expected a labels file (one class name a line) for the model {self.path}. Received: labels=None; pass --labels FILE.")
        super().__init__(settings, read_labels_file(settings.labels))
        self.preprocess_mode = settings.preprocess
        if settings.weights is not None:
            log.warning("%s: ignoring weights=%r: a .keras file carries its own weights.", self.path.name, settings.weights)
        self._input_size: tuple[int, int] | None = None
        #: True when setup found logits and predict applies a softmax
        self.applies_softmax = False

    @property
    def input_size(self) -> tuple[int, int]:  # type: ignore[override]
        if self._input_size is None:
            raise RuntimeError(f"Expected setup() before input_size: it is read from the model file {self.path}.")
        return self._input_size

    def build_keras_model(self) -> Any:
        keras = import_keras()
        try:
            model = keras.models.load_model(self.path, compile=False)
        except Exception as exc:  # Keras raises ValueError, OSError, zipfile errors, TypeError...
            raise ModelLoadError(f"Could not load the Keras model {self.path}: {type(exc).__name__}: {str(exc)[:300]}") from None
        self._input_size = _image_input_size(model, self.path)
        outputs = _output_width(model, self.path)
        if outputs != len(self.class_names):
            raise ModelLoadError(
                f"Expected as many labels as the model has outputs ({outputs}). "
                f"Received: {len(self.class_names)} labels in {self.settings.labels}"
            )
        return model

    def setup(self) -> None:
        super().setup()
        height, width = self.input_size
        probe_images = np.stack([
            np.zeros((height, width, 3), dtype=np.uint8),
            np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8),
        ])
        outputs = super().predict(np.stack([self.preprocess(image) for image in probe_images]))
        if not looks_like_probabilities(outputs):
            self.applies_softmax = True
            log.info("%s: outputs are not probabilities (negative, or rows not summing to 1); applying softmax.", self.path.name)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        outputs = super().predict(batch)
        return softmax(outputs) if self.applies_softmax else outputs


def _image_input_size(model: Any, path: Path) -> tuple[int, int]:
    try:
        shapes = [tuple(t.shape) for t in model.inputs]
    except (AttributeError, ValueError, TypeError):  # e.g. a Sequential model saved without an Input
        raise ModelLoadError(f"Expected a built model with an image input (None, height, width, 3) in {path}. Received: a model without inputs") from None
    if len(shapes) == 1 and len(shapes[0]) == 4 and shapes[0][3] == 3 and all(isinstance(n, int) for n in shapes[0][1:3]):
        return int(shapes[0][1]), int(shapes[0][2])
    raise ModelLoadError(f"Expected one image input of shape (None, height, width, 3) in {path}. Received: input shapes={shapes}")


def _output_width(model: Any, path: Path) -> int:
    try:
        shapes = [tuple(t.shape) for t in model.outputs]
    except (AttributeError, ValueError, TypeError):
        raise ModelLoadError(f"Expected a built model with one output (None, classes) in {path}. Received: a model without outputs") from None
    if len(shapes) == 1 and len(shapes[0]) == 2 and isinstance(shapes[0][1], int):
        return int(shapes[0][1])
    raise ModelLoadError(f"Expected one output of shape (None, classes) in {path}. Received: output shapes={shapes}")
