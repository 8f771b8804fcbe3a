"""TensorFlow in one place: quiet import, thread settings, the compiled forward pass, and the Keras model base class.

Importing this module does NOT import TensorFlow; the functions do, when first
called. Why a compiled function: on this 2-core machine a ResNet50 batch of 1
takes 60 ms through a ``tf.function`` with a fixed input signature, 103 ms
through ``model.predict`` and 247 ms eagerly (ARCHITECTURE.md). The fixed
signature ``[None, h, w, 3]`` means one trace serves every batch size.
"""

from __future__ import annotations

import logging
import os
import threading
from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import ModelLoadError
from ..settings import ModelSettings
from .base import ImageClassifier
from .preprocessing import PREPROCESSORS, check_image

log = logging.getLogger(__name__)

#: TF's C++ log filter: 0 all, 1 hides INFO (the start-up banners), 2 hides WARNING, 3 hides ERROR.
#: "1" keeps warnings and errors visible; an explicit TF_CPP_MIN_LOG_LEVEL in the environment wins.
DEFAULT_TF_LOG_LEVEL = "1"

_configure_lock = threading.Lock()


def import_tensorflow() -> Any:
    """Import TensorFlow with its start-up INFO noise filtered (warnings and errors still show)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", DEFAULT_TF_LOG_LEVEL)
    import tensorflow as tf

    return tf


def import_keras() -> Any:
    """Import Keras 3 on the TensorFlow backend (the compiled forward pass is a ``tf.function``)."""
    import_tensorflow()
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise ModelLoadError(f"Expected the Keras backend to be tensorflow. Received: KERAS_BACKEND={backend!r}; unset it or set it to tensorflow.")
    return keras


def configure_tensorflow(intra_op_threads: int = 0, inter_op_threads: int = 0) -> None:
    """Set TensorFlow's thread pools (0 = TensorFlow's default). Call before TensorFlow runs anything.

    Safe to call twice: the same values again are a no-op; different values once
    TensorFlow has started are logged as a warning and the running values kept.
    """
    for name, value in (("intra_op_threads", intra_op_threads), ("inter_op_threads", inter_op_threads)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"Expected {name} to be an integer >= 0 (0 = TensorFlow's default). Received: {name}={value!r}")
    tf = import_tensorflow()
    threading_config = tf.config.threading
    with _configure_lock:
        current = (threading_config.get_intra_op_parallelism_threads(), threading_config.get_inter_op_parallelism_threads())
        if current == (intra_op_threads, inter_op_threads):
            return
        try:
            threading_config.set_intra_op_parallelism_threads(intra_op_threads)
            threading_config.set_inter_op_parallelism_threads(inter_op_threads)
        except RuntimeError:
            log.warning(
                "TensorFlow is already running, so its thread settings stay intra_op_threads=%d, inter_op_threads=%d "
                "(asked for %d, %d). Call configure_tensorflow() before building a model.",
                *current,
                intra_op_threads,
                inter_op_threads,
            )
            return
        log.info("TensorFlow threads: intra_op=%d, inter_op=%d (0 = default)", intra_op_threads, inter_op_threads)


def compile_forward(model: Any, input_size: tuple[int, int]) -> Callable[[np.ndarray], np.ndarray]:
    """Wrap a Keras model in a ``tf.function`` with input signature ``[None, h, w, 3] float32``.

    Returns ``forward(batch: float32 numpy (n, h, w, 3)) -> numpy (n, outputs)``,
    calling ``model(x, training=False)``. The first call per batch size pays the
    trace/allocation cost; :meth:`ImageClassifier.warmup` takes it before serving.
    """
    tf = import_tensorflow()
    height, width = input_size
    spec = tf.TensorSpec([None, height, width, 3], tf.float32, name="images")

    @tf.function(input_signature=[spec])
    def graph_forward(images):
        return model(images, training=False)

    def forward(batch: np.ndarray) -> np.ndarray:
        return graph_forward(tf.convert_to_tensor(batch, dtype=tf.float32)).numpy()

    return forward


class KerasClassifier(ImageClassifier):
    """An :class:`ImageClassifier` whose network is a Keras model served through :func:`compile_forward`.

    Subclasses set ``preprocess_mode`` (a key of :data:`~.preprocessing.PREPROCESSORS`)
    and implement :meth:`build_keras_model` (build and load weights); ``setup()``
    compiles the forward pass and ``predict`` checks the batch and runs it.
    """

    #: which numpy preprocessing the network expects (raw, unit, tf, caffe, torch)
    preprocess_mode: str

    def __init__(self, settings: ModelSettings, class_names: Sequence[str]) -> None:
        self.settings = settings
        self.class_names = class_names
        self.model: Any = None
        self._forward: Callable[[np.ndarray], np.ndarray] | None = None

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        check_image(image, self.input_size)
        return PREPROCESSORS[self.preprocess_mode](image)

    def warn_random_weights(self) -> None:
        log.warning("%s: random weights (weights='random'); timings are real, predictions are meaningless.", self.name)

    @abstractmethod
    def build_keras_model(self) -> Any:
        """Build the Keras model and load its weights; raise ModelLoadError with a fix on failure."""

    def setup(self) -> None:
        self.model = self.build_keras_model()
        self._forward = compile_forward(self.model, self.input_size)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        if self._forward is None:
            raise RuntimeError(f"Expected setup() before predict() on model {self.name!r}.")
        expected = (*self.input_size, 3)
        if not isinstance(batch, np.ndarray) or batch.ndim != 4 or batch.shape[1:] != expected:
            shape = getattr(batch, "shape", type(batch).__name__)
            raise ValueError(f"Expected a float32 batch of shape (n, {', '.join(map(str, expected))}). Received: shape={shape}")
        return self._forward(np.asarray(batch, dtype=np.float32))
