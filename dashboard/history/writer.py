"""The history's background writer: a bounded queue and ONE thread that inserts rows in batches.

A request thread only enqueues a row (microseconds); the writer thread takes
whatever has queued up within :data:`LINGER_S` of the first row (at most
:data:`MAX_BATCH` rows; after a full batch it writes on at once) and hands it
to the store's ``write`` function, which inserts the batch in one transaction.
Rows are written in the order they were queued.

- :meth:`HistoryWriter.flush` waits (bounded) until everything queued before
  the call has been written (or has failed and been logged): readers call it
  first, so a user sees their own request in the history at once.
- A full queue is not a reason to drop a row: :meth:`HistoryWriter.submit`
  returns False and the store writes that row directly on the caller's thread.
- :meth:`HistoryWriter.close` stops taking rows and drains the queue, bounded
  (the dashboard's SIGTERM path calls it); rows submitted after that are
  refused, so the store writes them directly.
- A batch that fails is logged with its size; the writer carries on.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from typing import Callable, Sequence

log = logging.getLogger(__name__)

#: rows per transaction, at most
MAX_BATCH = 500
#: after the first row of a batch, the writer waits this long for more (unless a reader or close is waiting):
#: rows arriving meanwhile share one transaction. A transaction costs far more CPU than a row (the writer thread
#: took 0.35-0.7 ms per API request when most batches held one row, 0.1 ms at ten or more; dashboard process
#: CPU, interleaved A/B on the 2-core machine), so the writer waits long enough to gather a busy moment's rows.
#: Readers in this process never wait for it (flush hurries the writer); other processes see a row at most
#: this much later.
LINGER_S = 0.1
#: how long a reader waits for the queue ahead of it by default
FLUSH_TIMEOUT_S = 2.0
THREAD_NAME = "history-writer"
_STOP = object()


class HistoryWriter:
    """One thread writing ``write(rows)`` batches from a queue of at most ``max_queue`` rows."""

    def __init__(self, write: Callable[[Sequence[dict]], None], max_queue: int, *, name: str = THREAD_NAME,
                 linger_s: float = LINGER_S) -> None:
        self._write = write
        self._linger_s = linger_s
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, int(max_queue)))
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._queued = 0      # rows accepted into the queue so far
        self._finished = 0    # rows the thread has written (or failed on, logged) so far
        self._closed = False
        self._full = False    # the queue was full at the last submit (warn once per episode)
        self.overflowed = 0   # rows the caller had to write directly because the queue was full
        self.failed = 0       # rows lost to a failing database (logged)
        self._pid = os.getpid()
        self._hurry = threading.Event()  # a reader (flush) or close is waiting: write now
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Rows queued but not yet written."""
        with self._lock:
            return self._queued - self._finished

    def submit(self, row: dict) -> bool:
        """Queue ``row``; False when it was not taken (queue full, writer closed, or another process after a fork)."""
        if os.getpid() != self._pid:  # a forked child has no writer thread
            return False
        with self._lock:
            if self._closed:
                return False
            try:
                self._queue.put_nowait(row)
            except queue.Full:
                self.overflowed += 1
                if not self._full:
                    self._full = True
                    log.warning("History queue full (%d rows); writing on the request thread until it drains",
                                self._queue.maxsize)
                return False
            self._queued += 1
            self._full = False
            return True

    def flush(self, timeout_s: float = FLUSH_TIMEOUT_S) -> bool:
        """Wait until every row queued before this call is written; False if ``timeout_s`` ran out first."""
        if os.getpid() != self._pid or threading.current_thread() is self._thread:
            return True
        deadline = time.monotonic() + timeout_s
        self._hurry.set()
        with self._lock:
            target = self._queued
            while self._finished < target:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    log.warning("History flush gave up with %d rows still queued", self._queued - self._finished)
                    return False
                self._done.wait(left)
        return True

    def close(self, timeout_s: float = FLUSH_TIMEOUT_S) -> bool:
        """Take no more rows, write what is queued and stop the thread; False if ``timeout_s`` ran out first."""
        with self._lock:
            if self._closed:
                already = True
            else:
                already, self._closed = False, True
        deadline = time.monotonic() + timeout_s
        self._hurry.set()
        if not already and os.getpid() == self._pid:
            try:
                self._queue.put(_STOP, timeout=timeout_s)  # waits only while the queue is full
            except queue.Full:
                pass
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            log.warning("History writer still busy after %.1f s with %d rows queued", timeout_s, self.pending)
            return False
        return True

    def _run(self) -> None:
        stopping = False
        backlog = False  # the last batch was full: rows are waiting, so write on without lingering
        while not stopping:
            batch = [self._queue.get()]
            if batch[0] is not _STOP and not backlog and self._hurry.wait(self._linger_s):
                self._hurry.clear()
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            backlog = len(batch) >= MAX_BATCH
            if batch[-1] is _STOP:  # always the last row: nothing is queued once the writer is closed
                stopping = True
                batch.pop()
            if batch:
                self._write_batch(batch)

    def _write_batch(self, batch: list[dict]) -> None:
        try:
            self._write(batch)
        except Exception:  # noqa: BLE001 - the history is best effort; the answers already went out
            self.failed += len(batch)
            log.exception("Could not write %d history rows", len(batch))
        finally:
            with self._lock:
                self._finished += len(batch)
                self._done.notify_all()
