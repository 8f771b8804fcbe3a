"""The one small interface every served model implements.

A model is set up once (``setup()`` builds the network and loads weights,
never ``__init__``), then used by the server in two places:

* ``preprocess(image)`` runs in decode threads, off the I/O loop. It takes an
  RGB ``uint8`` array already resized to ``input_size`` (height, width, 3) and
  returns the ``float32`` array the network expects. Pure numpy: it must not
  call TensorFlow.
* ``predict(batch)`` runs in the single inference thread. It takes a
  ``float32`` array (n, height, width, 3) and returns probabilities (n, classes)
  as a numpy array, through a compiled function with a fixed input signature.

``warmup(batch_sizes)`` runs the compiled function once per batch size so the
first real request pays no tracing or allocation cost.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence

import numpy as np


class ImageClassifier(ABC):
    """Name, input size, class names, preprocess, predict."""

    #: registry name, e.g. "efficientnet-lite0"
    name: str
    #: (height, width) the network takes
    input_size: tuple[int, int]
    #: one human-readable name per output index
    class_names: Sequence[str]

    @abstractmethod
    def setup(self) -> None:
        """Build the network and load its weights (slow; called once)."""

    @abstractmethod
    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """RGB uint8 (h, w, 3) at ``input_size`` -> float32 network input. Numpy only."""

    @abstractmethod
    def predict(self, batch: np.ndarray) -> np.ndarray:
        """float32 (n, h, w, 3) -> probabilities (n, classes), via a compiled call."""

    def warmup(self, batch_sizes: Iterable[int]) -> None:
        """Run one forward pass per batch size so later calls are fast."""
        height, width = self.input_size
        for size in batch_sizes:
            self.predict(np.zeros((size, height, width, 3), dtype=np.float32))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def top_k(self, probabilities: np.ndarray, k: int) -> list[dict]:
        """The k most probable classes of one probability row, most probable first."""
        k = max(1, min(int(k), probabilities.shape[-1]))
        indices = np.argpartition(-probabilities, k - 1)[:k]
        indices = indices[np.argsort(-probabilities[indices], kind="stable")]
        return [
            {"index": int(i), "label": self.class_names[int(i)], "p": round(float(probabilities[i]), 6)}
            for i in indices
        ]
