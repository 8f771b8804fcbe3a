"""The history's numbers, computed with numpy from plain arrays: the latency groups, their percentiles,
the time view's window and its per-time-bucket percentiles (pure functions; no database, no figures).

Three groups make the comparison like with like (see :data:`GROUP_DEFINITIONS`):

- **alone**: a service request that ran by itself: ``batch_size == 1`` and ``queue_ms < 1`` (ms), both as the
  backend reported them (a row without either is not counted as alone);
- **under load**: every other successful service request (it shared a forward pass, or waited in the queue);
- **monolith**: a fresh process that imported TensorFlow and loaded the model for one image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ALONE, LOADED, MONOLITH_GROUP = 0, 1, 2
GROUPS = (ALONE, LOADED, MONOLITH_GROUP)
GROUP_KEYS = {ALONE: "alone", LOADED: "loaded", MONOLITH_GROUP: "monolith"}
GROUP_LABELS = {ALONE: "service, alone", LOADED: "service, under load", MONOLITH_GROUP: "monolith"}
#: a service request "ran alone" when the backend put it in a batch of one and it waited less than this in the queue
ALONE_MAX_QUEUE_MS = 1.0
GROUP_DEFINITIONS = {
    ALONE: f"Service requests that ran alone: batch size 1 and under {ALONE_MAX_QUEUE_MS:g} ms in the backend's queue, "
           "as the backend reported them.",
    LOADED: "Every other successful service request: it shared a forward pass with others (batch size > 1) "
            f"or waited {ALONE_MAX_QUEUE_MS:g} ms or more in the queue.",
    MONOLITH_GROUP: "Monolith runs: a fresh process that imports TensorFlow, loads the model, classifies one image "
                    "and exits (wall clock).",
}
#: the SQL expression that puts a row in its group (the same rule as above, evaluated by SQLite)
GROUP_SQL = (f"CASE WHEN kind = 'monolith' THEN {MONOLITH_GROUP} "
             f"WHEN batch_size = 1 AND queue_ms IS NOT NULL AND queue_ms < {ALONE_MAX_QUEUE_MS!r} THEN {ALONE} "
             f"ELSE {LOADED} END")

#: a silence longer than this between two requests is an idle gap (the time view never joins points across one)
MIN_GAP_S = 60.0
#: the time view shows at least this many seconds
MIN_SPAN_S = 10.0
#: fewer requests than this are all in the time view, whatever the gaps between them (idle gaps are cut instead)
FEW_REQUESTS = 50
#: at most this many idle gaps are cut out of the time axis
MAX_BREAKS = 12
#: what is left of an idle gap each side of a cut, as a share of the visible span
BREAK_MARGIN = 0.03


@dataclass(frozen=True)
class LatencyArrays:
    """Successful requests, oldest first: Unix time (s), round trip (ms), group, batch size (0 when unknown);
    ``sample_step`` k > 1 when they are every k-th request of a longer stretch."""

    ts: np.ndarray
    latency_ms: np.ndarray
    group: np.ndarray
    batch_size: np.ndarray
    sample_step: int = 1

    @classmethod
    def from_rows(cls, rows: list[tuple], sample_step: int = 1) -> "LatencyArrays":
        """From (ts, latency_ms, group, batch_size) rows, newest first (as the store reads them)."""
        if not rows:
            return cls(np.empty(0), np.empty(0), np.empty(0, dtype=np.int8), np.empty(0, dtype=np.int32), sample_step)
        table = np.array(rows[::-1], dtype=float)
        return cls(table[:, 0], table[:, 1], table[:, 2].astype(np.int8),
                   np.nan_to_num(table[:, 3], nan=0.0).astype(np.int32), sample_step)

    def __len__(self) -> int:
        return int(self.ts.size)


def view_start(times: np.ndarray, min_gap_s: float = MIN_GAP_S, weights: np.ndarray | None = None) -> float | None:
    """Where the time view starts: the first of ``times`` (sorted; request times or activity-bin starts), unless
    idle gaps take most of the span.

    Fewer than :data:`FEW_REQUESTS` requests (``weights``: requests per time; 1 each by default) are all shown.
    Otherwise the view starts after the longest gap (> ``min_gap_s``) while that gap is more than half of what
    would be shown and at least half of *all* the requests come after it: yesterday's five requests do not
    squeeze today's burst into a sliver (they stay in the distribution), and the view never drops most requests.
    """
    if times.size == 0:
        return None
    weights = np.ones(times.size) if weights is None else np.asarray(weights, dtype=float)
    total = float(weights.sum())
    if total < FEW_REQUESTS:
        return float(times[0])
    start_index, last = 0, float(times[-1])
    while times.size - start_index > 1:
        gaps = np.diff(times[start_index:])
        widest = int(np.argmax(gaps))
        after = weights[start_index + widest + 1:].sum()
        if gaps[widest] <= min_gap_s or gaps[widest] <= 0.5 * (last - float(times[start_index])) \
                or after < 0.5 * total:
            break
        start_index += widest + 1
    return float(times[start_index])


def idle_breaks(bins: np.ndarray, bin_s: float, max_breaks: int = MAX_BREAKS) -> list[tuple[float, float]]:
    """The idle stretches to cut out of the time axis, as (start, end) Unix times, oldest first.

    ``bins`` are the starts of the activity bins (``bin_s`` wide) in view, sorted. A silence between two bins is
    cut when it is longer than :data:`MIN_GAP_S` and than a third of what stays visible once it is cut (widest
    first, at most ``max_breaks``): a few requests hours apart, or bursts a day apart, each get room instead of
    sitting on the edges of an empty axis. A margin is left on both sides of each cut so no point sits on it.
    """
    if bins.size < 2:
        return []
    starts, ends = bins[:-1] + bin_s, bins[1:]
    lengths = ends - starts
    visible = float(bins[-1] + bin_s - bins[0])
    chosen = []
    for i in np.argsort(-lengths, kind="stable")[:max_breaks]:
        if lengths[i] <= MIN_GAP_S or lengths[i] <= (visible - lengths[i]) / 3:
            break
        chosen.append(int(i))
        visible -= float(lengths[i])
    margin = max(BREAK_MARGIN * visible, 5.0)
    return [(float(starts[i] + margin), float(ends[i] - margin)) for i in sorted(chosen)
            if ends[i] - starts[i] > 2 * margin]


def padded_window(first: float, last: float, idle_s: float = 0.0) -> tuple[float, float]:
    """The time view's x range for requests from ``first`` to ``last``: at least :data:`MIN_SPAN_S` wide and
    padded 4 % each side, so no marker sits on an edge. ``idle_s``: seconds cut out of the axis (idle_breaks),
    which the padding leaves out."""
    span = max(last - first - idle_s, MIN_SPAN_S)
    pad = span * 0.04
    if last - first - idle_s < MIN_SPAN_S:
        middle = (first + last) / 2
        return middle - span / 2 - pad, middle + span / 2 + pad
    return first - pad, last + pad


@dataclass(frozen=True)
class Buckets:
    """Per-time-bucket percentiles of one group: bucket starts (s), width (s), counts, p50, p95, max (ms)."""

    start: np.ndarray
    width: float
    count: np.ndarray
    p50: np.ndarray
    p95: np.ndarray
    max: np.ndarray


def bucket_width(span_s: float, target: int) -> float:
    """A round bucket width (1, 2, 5, 10, 15, 30 s, 1, 2, 5, 10, 15, 30 min, 1, 2, 3, 6, 12 h, 1 d...)
    that cuts ``span_s`` into at most about ``target`` buckets."""
    steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400]
    wanted = span_s / max(1, target)
    for step in steps:
        if step >= wanted:
            return float(step)
    return float(86400 * math.ceil(wanted / 86400))


def bucket_percentiles(ts: np.ndarray, latency_ms: np.ndarray, start: float, width: float) -> Buckets:
    """p50, p95 and max per ``width``-second bucket from ``start``; empty buckets left out (the gaps)."""
    index = np.floor((ts - start) / width).astype(np.int64)
    order = np.lexsort((latency_ms, index))  # by bucket, then by latency: each bucket's values come sorted
    index, values = index[order], latency_ms[order]
    keys, first, counts = np.unique(index, return_index=True, return_counts=True)

    def at(q: float) -> np.ndarray:  # numpy's linear interpolation inside each sorted bucket
        position = first + (counts - 1) * q
        low = np.floor(position).astype(np.int64)
        high = np.minimum(low + 1, first + counts - 1)
        return values[low] + (values[high] - values[low]) * (position - low)

    if keys.size == 0:
        nothing = np.empty(0)
        return Buckets(nothing, width, np.empty(0, dtype=np.int64), nothing, nothing, nothing)
    return Buckets(start + keys * width, width, counts, at(0.5), at(0.95), values[first + counts - 1])
