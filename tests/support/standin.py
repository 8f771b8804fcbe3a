"""A tiny stand-in classifier (numpy only) for fast, deterministic server tests.

Its "prediction" is a function of each image's mean colour, so a test can
check that every reply belongs to its own image; ``delay_s`` makes each
forward pass slow enough to fill batches and queues on purpose.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from model_backend.models.base import ImageClassifier


class StandInClassifier(ImageClassifier):
    """Class i = "shade-i": the image's mean red value bucketed into 16 classes."""

    name = "stand-in"
    input_size = (32, 32)
    class_names = [f"shade-{i}" for i in range(16)]

    def __init__(self, delay_s: float = 0.0, fail: bool = False):
        self.delay_s = delay_s
        self.fail = fail
        self.batch_sizes: list[int] = []
        self._lock = threading.Lock()

    def setup(self) -> None:
        pass

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        return image.astype(np.float32) / 255.0

    def predict(self, batch: np.ndarray) -> np.ndarray:
        with self._lock:
            self.batch_sizes.append(len(batch))
        if self.fail:
            raise RuntimeError("stand-in failure")
        if self.delay_s:
            time.sleep(self.delay_s)
        shade = np.clip((batch[..., 0].mean(axis=(1, 2)) * 16).astype(int), 0, 15)
        probabilities = np.full((len(batch), 16), 0.2 / 15, dtype=np.float32)
        probabilities[np.arange(len(batch)), shade] = 0.8
        return probabilities


def shade_png(shade: int, size: int = 48) -> bytes:
    """A solid PNG whose red channel puts it in class ``shade`` (0..15)."""
    import io

    from PIL import Image

    red = int((shade + 0.5) * 256 / 16)
    image = Image.new("RGB", (size, size), (red, 40, 200))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def progressive_jpeg_of_many_scans(shade: int, side: int, extra_scans: int) -> bytes:
    """A solid progressive JPEG (class ``shade``) with ``extra_scans`` more copies of its last, refining scan, each
    empty: a few KB more per thousand scans, and one more pass of the decoder over the whole image each."""
    import io
    import struct

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (int((shade + 0.5) * 256 / 16), 40, 200)).save(buffer, "JPEG", progressive=True)
    data = buffer.getvalue()
    last = data.rfind(b"\xff\xda")
    header = data[last:last + 2 + struct.unpack(">H", data[last + 2:last + 4])[0]]
    return data[:-2] + header * extra_scans + b"\xff\xd9"
