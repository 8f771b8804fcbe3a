"""The results a browser session keeps: small records in the tab's sessionStorage, so they survive a reload.

What the browser keeps, per classified image, is small and never an image:
its sha256, name, source, round trip, the drop it came in and the backend's
reply (top-k, stage timings, batch size, model): about half a kilobyte. The
thumbnail is served by the server from the kept upload (``/thumbnails/<sha256>.jpg``).
At most ``session_results`` records are kept (the dashboard's setting), newest
first; the oldest go first.

Everything that comes back from the browser is untrusted: :func:`read_records`
re-validates each record (the reply through ``ClassifyReply.from_wire``, the
sha256 as 64 hex digits, the name through ``clean_name``) and drops what does
not pass, so a tampered sessionStorage can show nothing a real result could not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from model_backend.errors import BackendError
from model_backend.protocol import ClassifyReply

from ..common.sanitize import clean_name, clean_text
from .uploads import Outcome

#: the store's format; records of another version are dropped
VERSION = 1
SOURCES = ("upload", "example", "api")
HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class SessionResult:
    """One kept result: the outcome it shows and the drop it came in (1, 2, ...: higher is newer)."""

    outcome: Outcome
    drop: int


def is_sha256(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64 and set(value) <= HEX


def to_record(outcome: Outcome, drop: int) -> dict | None:
    """A classified outcome as the small dict the browser keeps (None for a failed one: errors are not kept)."""
    if not outcome.ok or outcome.reply is None or not is_sha256(outcome.sha256):
        return None
    return {"sha256": outcome.sha256, "name": outcome.name, "source": outcome.source, "drop": drop,
            "latency_ms": None if outcome.latency_ms is None else round(float(outcome.latency_ms), 3),
            "reply": outcome.reply.to_wire()}


def from_record(raw: object) -> SessionResult | None:
    """A record from the browser, validated; None if any part of it is not what :func:`to_record` writes."""
    if not isinstance(raw, dict) or not is_sha256(raw.get("sha256")):
        return None
    drop, latency = raw.get("drop"), raw.get("latency_ms")
    if type(drop) is not int or drop < 1:
        return None
    if latency is not None and (type(latency) not in (int, float) or not 0 <= latency < math.inf):
        return None
    try:
        reply = ClassifyReply.from_wire(raw.get("reply"))
    except BackendError:
        return None
    source = raw.get("source") if raw.get("source") in SOURCES else "upload"
    name = clean_name(raw.get("name"), raw["sha256"])
    reply = ClassifyReply(predictions=reply.predictions, timings_ms=reply.timings_ms, batch_size=reply.batch_size,
                          model=clean_text(reply.model, 80), roundtrip_ms=reply.roundtrip_ms)
    outcome = Outcome(name, raw["sha256"], True, reply=reply, latency_ms=None if latency is None else float(latency),
                      source=source)
    return SessionResult(outcome, drop)


def read_records(data: object, limit: int) -> list[SessionResult]:
    """The session's results from the browser's store, newest first, at most ``limit``; invalid records dropped."""
    records = data.get("results") if isinstance(data, dict) and data.get("version") == VERSION else None
    if not isinstance(records, list):
        return []
    results = [result for result in (from_record(raw) for raw in records[: max(limit, 0)]) if result is not None]
    return sorted(results, key=lambda result: result.drop, reverse=True)  # stable: a drop keeps its order


def add_outcomes(data: object, outcomes: Sequence[Outcome], limit: int) -> dict | None:
    """The store's new value after a drop: its classified outcomes first (as the newest drop), then what was kept,
    cut to ``limit`` records. None when the drop classified nothing (the caller leaves the store as it is)."""
    kept = read_records(data, limit)
    drop = (kept[0].drop if kept else 0) + 1
    new = [record for record in (to_record(outcome, drop) for outcome in outcomes) if record is not None]
    if not new:
        return None
    old = [to_record(result.outcome, result.drop) for result in kept]
    return {"version": VERSION, "results": (new + old)[:limit]}


def latest_drop(results: Sequence[SessionResult]) -> tuple[list[Outcome], list[Outcome]]:
    """(the newest drop's outcomes, every older one), each newest first."""
    if not results:
        return [], []
    newest = results[0].drop
    return ([r.outcome for r in results if r.drop == newest], [r.outcome for r in results if r.drop != newest])
