"""The micro-batcher: gathers decoded requests into one forward pass.

Decode threads announce a request with :meth:`MicroBatcher.expect` when its
decoding starts and hand it over with :meth:`put` (or :meth:`cancel` when
decoding failed). The inference thread calls :meth:`next_batch`, which

* blocks until at least one item is ready;
* takes every ready item, up to ``max_batch``;
* waits up to ``max_wait_ms`` for more only while other requests are still
  being decoded, so a lone request never waits for a batch to fill.

Under load, items pile up while the previous batch runs, so batches form on
their own without any waiting.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Generic, TypeVar

Item = TypeVar("Item")


class ReadyQueue(Generic[Item]):
    """Decoded items waiting for inference, and how many are still decoding (thread-safe).

    Decode threads call :meth:`expect` when decoding starts and :meth:`put`
    (or :meth:`cancel`, when decoding failed) when it ends; :meth:`close`
    wakes every waiting consumer. Consumers (the micro-batcher here, the
    pool's core gate in execution.py) wait on ``_cond``.
    """

    def __init__(self) -> None:
        self._ready: deque[Item] = deque()
        self._decoding = 0
        self._closed = False
        self._cond = threading.Condition()

    def expect(self) -> None:
        """A request has started decoding; it will arrive by put() or cancel()."""
        with self._cond:
            self._decoding += 1

    def put(self, item: Item) -> None:
        with self._cond:
            self._decoding = max(0, self._decoding - 1)
            self._ready.append(item)
            self._cond.notify()

    def cancel(self) -> None:
        """An expected request failed to decode and will not arrive."""
        with self._cond:
            self._decoding = max(0, self._decoding - 1)
            self._cond.notify()

    def close(self) -> None:
        """Wake every consumer; from now on they get what is left (the batcher) or nothing (the gate)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class MicroBatcher(ReadyQueue[Item]):
    """A thread-safe queue that hands out batches."""

    def __init__(self, max_batch: int, max_wait_ms: float):
        if max_batch < 1:
            raise ValueError(f"Expected max_batch >= 1. Received: max_batch={max_batch}")
        super().__init__()
        self.max_batch = max_batch
        self.max_wait_s = max(0.0, max_wait_ms) / 1000.0

    def next_batch(self) -> list[Item]:
        """Block for the next batch; [] once closed and drained."""
        with self._cond:
            while not self._ready:
                if self._closed:
                    return []
                self._cond.wait()
            if self.max_wait_s > 0 and len(self._ready) < self.max_batch and self._decoding > 0:
                deadline = time.monotonic() + self.max_wait_s
                while len(self._ready) < self.max_batch and self._decoding > 0 and not self._closed:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
            count = min(self.max_batch, len(self._ready))
            return [self._ready.popleft() for _ in range(count)]
