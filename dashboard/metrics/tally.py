"""Classify metrics gathered in memory and written to prometheus_client in batches, off the request path.

Why: in multiprocess mode (dashboard/metrics/registry.py) every ``inc`` and
``observe`` is a locked write to a memory-mapped file plus a ``getpid`` call,
and one classify request made 15 of them (its count, its round trip and five
backend stage times, each histogram a sum and a bucket, and its batch size):
about 5-8 % of the dashboard's CPU per ``POST /api/v1/classify``. A
:class:`ClassifyTally` takes each request's numbers with one ``deque.append``
and writes what has gathered as one write per sample touched (a counter's
``inc(n)``, a histogram's sum and each bucket hit), when:

- a scrape asks (``registry.exposition`` flushes first, so ``/metrics`` is exact),
- every ``flush_s`` (a daemon thread; other processes reading the folder see a
  request at most that much later),
- the app stops (``app.stop_app``) and at interpreter exit.

Only the process that turned it on gathers: in any other process (a forked
background job, a test that never turned it on) ``take`` returns False and the
caller writes directly, as before.
"""

from __future__ import annotations

import atexit
import bisect
import collections
import logging
import os
import threading
from typing import Callable, Iterable

log = logging.getLogger(__name__)

#: how often gathered samples are written when no scrape asks first
FLUSH_S = 1.0
THREAD_NAME = "metrics-tally"


def observe_all(child, amounts: Iterable[float]) -> None:
    """``child.observe(amount)`` for every amount, as one write per bucket hit plus one for the sum.

    ``child`` is a labelled prometheus_client Histogram. Its per-observation logic is
    ``Histogram.observe``'s (the first bucket whose upper bound is >= the amount); the buckets and the sum
    are its private ``_buckets`` / ``_sum`` values, so a prometheus_client without them gets plain
    ``observe`` calls instead.
    """
    bounds, buckets, total_value = (getattr(child, name, None) for name in ("_upper_bounds", "_buckets", "_sum"))
    if bounds is None or buckets is None or total_value is None or len(bounds) != len(buckets):
        for amount in amounts:
            child.observe(amount)
        return
    counts = [0] * len(bounds)
    total = 0.0
    for amount in amounts:
        total += amount
        index = bisect.bisect_left(bounds, amount)  # the first bucket whose upper bound is >= the amount (the last is +Inf)
        if index < len(bounds) and amount <= bounds[index]:  # a NaN falls in none, as in Histogram.observe
            counts[index] += 1
    total_value.inc(total)
    for index, count in enumerate(counts):
        if count:
            buckets[index].inc(count)


class ClassifyTally:
    """Classify requests' metrics, queued by request threads and written by :meth:`flush`."""

    def __init__(self, write: Callable[[list], None]) -> None:
        """``write(entries)`` writes a list of entries (whatever :meth:`take` was given) to the metrics."""
        self._write = write
        self._pending: collections.deque = collections.deque()
        self._flush_lock = threading.Lock()
        self._pid: int | None = None  # the process that gathers; None: off
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return self._pid is not None and self._pid == os.getpid()

    def start(self, flush_s: float = FLUSH_S) -> None:
        """Gather in this process from now on, written every ``flush_s`` and at exit (idempotent)."""
        if self.enabled:
            return
        self._pending.clear()  # after a fork: what the parent had gathered is the parent's to write
        self._pid = os.getpid()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(flush_s,), name=THREAD_NAME, daemon=True)
        self._thread.start()
        atexit.register(self.flush)

    def stop(self) -> None:
        """Write what has gathered and write directly from now on."""
        self._stop.set()
        self.flush()
        self._pid = None

    def take(self, entry) -> bool:
        """Queue ``entry`` for the next flush; False when this process does not gather (write it yourself)."""
        if not self.enabled:
            return False
        self._pending.append(entry)
        return True

    def flush(self) -> None:
        """Write everything queued so far (in this process only; one flush at a time)."""
        if not self.enabled:
            return
        with self._flush_lock:
            entries = []
            while True:
                try:
                    entries.append(self._pending.popleft())
                except IndexError:
                    break
            if entries:
                try:
                    self._write(entries)
                except Exception:  # noqa: BLE001 - metrics are best effort; the next flush carries on
                    log.exception("Could not write %d classify metrics", len(entries))

    def _run(self, flush_s: float) -> None:
        while not self._stop.wait(flush_s):
            self.flush()
