"""LiteRT in one place: a converted ``.tflite`` flatbuffer served through the XNNPACK delegate, without TensorFlow.

``ai_edge_litert.interpreter.Interpreter(model_content=..., num_threads=n)``
runs the flatbuffer (XNNPACK is its default CPU delegate for float models).
One interpreter serves every batch size: when a batch of another size arrives,
``resize_tensor_input`` + ``allocate_tensors`` reshape it (warm-up pays that
once per size before traffic, as it pays tracing for TensorFlow).

An interpreter is not thread-safe: each one runs in one inference thread at a
time (and, before serving, in the loader thread); a lock makes a mistake
serialise instead of corrupting state. ``replica(num_threads)`` makes another
interpreter on the same flatbuffer (no copy of it; XNNPACK packs its own copy
of the weights, about the flatbuffer's size, ``model_bytes``): the execution
strategies of model_backend/execution.py run several side by side. The
``Interpreter`` API has no option to share XNNPACK's packed weights between
interpreters (only the CompiledModel API's ``xnnpack_weight_cache_path`` has).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence

import numpy as np

from ..errors import ModelLoadError
from .base import ImageClassifier
from .custom import softmax
from .preprocessing import PREPROCESSORS, check_image

log = logging.getLogger(__name__)


def cpu_count() -> int:
    """Cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def litert_threads(intra_op_threads: int) -> int:
    """``--intra-op-threads`` as LiteRT's num_threads: 0 = all cores."""
    return intra_op_threads if intra_op_threads > 0 else cpu_count()


class LiteRTClassifier(ImageClassifier):
    """An :class:`ImageClassifier` whose forward pass is a LiteRT interpreter (XNNPACK) on a ``.tflite`` flatbuffer."""

    runtime = "litert"

    def __init__(self, name: str, class_names: Sequence[str], preprocess_mode: str, model_content: bytes,
                 *, num_threads: int, applies_softmax: bool = False) -> None:
        self.name = name
        self.class_names = class_names
        self.preprocess_mode = preprocess_mode
        self.applies_softmax = applies_softmax
        self.num_threads = num_threads
        self._content = model_content  # the interpreter reads from this buffer: keep it alive
        self._lock = threading.Lock()
        self._interpreter = None
        self._batch_size = 0
        self.input_size: tuple[int, int] = (0, 0)  # type: ignore[misc]
        self.runtime_reason = ""

    def setup(self) -> None:
        from ai_edge_litert.interpreter import Interpreter

        try:
            interpreter = Interpreter(model_content=self._content, num_threads=self.num_threads)
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"LiteRT could not load the converted model of {self.name}: {exc}") from None
        inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1 or len(inputs[0]["shape"]) != 4 or inputs[0]["shape"][3] != 3:
            raise ModelLoadError(f"Expected one image input (n, h, w, 3) and one output in the converted {self.name}. Received: {len(inputs)} inputs, {len(outputs)} outputs")
        self._input_index = inputs[0]["index"]
        self._output_index = outputs[0]["index"]
        self.input_size = (int(inputs[0]["shape"][1]), int(inputs[0]["shape"][2]))
        self._batch_size = int(inputs[0]["shape"][0])
        self._interpreter = interpreter

    @property
    def model_bytes(self) -> int:
        """The flatbuffer's size: about what each more interpreter costs in memory."""
        return len(self._content)

    def replica(self, num_threads: int) -> "LiteRTClassifier":
        """A set-up copy with its own interpreter of ``num_threads`` threads, sharing this one's flatbuffer."""
        copy = LiteRTClassifier(self.name, self.class_names, self.preprocess_mode, self._content,
                                num_threads=num_threads, applies_softmax=self.applies_softmax)
        copy.setup()
        return copy

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        check_image(image, self.input_size)
        return PREPROCESSORS[self.preprocess_mode](image)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        if self._interpreter is None:
            raise RuntimeError(f"Expected setup() before predict() on model {self.name!r}.")
        expected = (*self.input_size, 3)
        if not isinstance(batch, np.ndarray) or batch.ndim != 4 or batch.shape[1:] != expected or batch.shape[0] < 1:
            shape = getattr(batch, "shape", type(batch).__name__)
            raise ValueError(f"Expected a float32 batch of shape (n, {', '.join(map(str, expected))}). Received: shape={shape}")
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        with self._lock:
            interpreter = self._interpreter
            if batch.shape[0] != self._batch_size:
                interpreter.resize_tensor_input(self._input_index, list(batch.shape), strict=False)
                interpreter.allocate_tensors()
                self._batch_size = batch.shape[0]
            interpreter.set_tensor(self._input_index, batch)
            interpreter.invoke()
            outputs = interpreter.get_tensor(self._output_index).copy()
        return softmax(outputs) if self.applies_softmax else outputs
