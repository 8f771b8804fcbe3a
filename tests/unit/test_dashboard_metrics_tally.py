"""dashboard/metrics/tally.py: classify metrics queued by request threads and written in batches say what direct
writes say, and only the process that turned gathering on gathers."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, Histogram

from dashboard.metrics import registry, tally
from model_backend.protocol import ClassifyReply

AMOUNTS = [0.0004, 0.001, 0.0015, 0.003, 0.003, 0.2, 7.5, 42.0, -1.0]


def samples(histogram_registry: CollectorRegistry) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for m in histogram_registry.collect() for s in m.samples
            if not s.name.endswith("_created")}


def test_observe_all_writes_what_observe_writes():
    one, two = CollectorRegistry(), CollectorRegistry()
    by_observe = Histogram("h", "h", ["stage"], buckets=registry.LATENCY_BUCKETS, registry=one)
    by_batch = Histogram("h", "h", ["stage"], buckets=registry.LATENCY_BUCKETS, registry=two)
    for amount in AMOUNTS:
        by_observe.labels("decode").observe(amount)
    tally.observe_all(by_batch.labels("decode"), AMOUNTS)
    first, second = samples(one), samples(two)
    assert first.keys() == second.keys()
    for key, value in first.items():
        assert math.isclose(value, second[key], rel_tol=1e-12, abs_tol=1e-12), key


def test_observe_all_falls_back_to_observe_without_the_histograms_internals():
    class Plain:
        def __init__(self):
            self.seen = []

        def observe(self, amount):
            self.seen.append(amount)

    plain = Plain()
    tally.observe_all(plain, AMOUNTS)
    assert plain.seen == AMOUNTS


def test_a_tally_gathers_only_once_started_and_writes_in_order():
    written = []
    gathered = tally.ClassifyTally(written.append)
    assert not gathered.take("before start")
    gathered.start(flush_s=3600)
    try:
        assert gathered.take(1) and gathered.take(2)
        assert written == []
        gathered.flush()
        assert written == [[1, 2]]
        gathered.flush()  # nothing queued: no write
        assert written == [[1, 2]]
        gathered.take(3)
    finally:
        gathered.stop()
    assert written == [[1, 2], [3]]  # stop writes what was queued
    assert not gathered.take(4)


def test_another_process_writes_directly(monkeypatch):
    gathered = tally.ClassifyTally(lambda entries: None)
    gathered.start(flush_s=3600)
    try:
        monkeypatch.setattr(tally.os, "getpid", lambda: -1)  # as in a child forked after start
        assert not gathered.take("in the child")
        gathered.flush()
    finally:
        monkeypatch.undo()
        gathered.stop()


def test_a_failing_write_is_logged_and_the_next_flush_carries_on(caplog):
    calls = []

    def write(entries):
        calls.append(entries)
        if len(calls) == 1:
            raise RuntimeError("disk full")

    gathered = tally.ClassifyTally(write)
    gathered.start(flush_s=3600)
    try:
        gathered.take("a")
        with caplog.at_level("ERROR"):
            gathered.flush()
        assert "Could not write 1 classify metrics" in caplog.text
        gathered.take("b")
        gathered.flush()
    finally:
        gathered.stop()
    assert calls == [["a"], ["b"]]


REPLY = ClassifyReply.from_wire({
    "ok": True, "id": "x", "model": "m", "batch_size": 2,
    "predictions": [{"index": 1, "label": "cat", "p": 0.9}],
    "timings_ms": {"queue": 0.1, "decode": 1.2, "preprocess": 0.2, "inference": 3.0, "total": 4.5},
})
CALLS = [("api", True, None, 5.0, REPLY), ("api", False, "bad_image", None, None), ("ui", True, None, 12.0, REPLY),
         ("api", False, "timeout", 5000.0, None)]
WATCHED = [
    ("warmserve_dashboard_requests_total", {"source": "api", "outcome": "ok", "code": "none"}),
    ("warmserve_dashboard_requests_total", {"source": "api", "outcome": "error", "code": "bad_image"}),
    ("warmserve_dashboard_requests_total", {"source": "api", "outcome": "error", "code": "timeout"}),
    ("warmserve_dashboard_request_duration_seconds_count", {"source": "api"}),
    ("warmserve_dashboard_request_duration_seconds_bucket", {"source": "api", "le": "0.005"}),
    ("warmserve_dashboard_request_duration_seconds_bucket", {"source": "ui", "le": "0.02"}),
    ("warmserve_dashboard_request_duration_seconds_sum", {"source": "ui"}),
    ("warmserve_backend_stage_duration_seconds_count", {"stage": "inference"}),
    ("warmserve_backend_stage_duration_seconds_bucket", {"stage": "decode", "le": "0.002"}),
    ("warmserve_backend_batch_size_bucket", {"le": "2.0"}),
]


def readings() -> list[float]:
    return [registry.REGISTRY.get_sample_value(name, labels) or 0.0 for name, labels in WATCHED]


@pytest.fixture
def own_tally(monkeypatch):
    """registry's tally replaced by a fresh one for the test (the real one stays off)."""
    fresh = tally.ClassifyTally(registry._write_classify)
    monkeypatch.setattr(registry, "CLASSIFY_TALLY", fresh)
    yield fresh
    fresh.stop()


def test_gathered_classify_metrics_read_as_direct_ones_once_a_scrape_flushes(own_tally):
    start = readings()
    for call in CALLS:
        registry.record_classify(*call)
    direct = [after - before for before, after in zip(start, readings())]
    assert direct[0] == 1 and direct[7] == 2  # the watch list sees these calls

    own_tally.start(flush_s=3600)
    middle = readings()
    for call in CALLS:
        registry.record_classify(*call)
    assert readings() == middle  # queued, not written yet
    registry.exposition()  # a scrape writes them first
    gathered = [after - before for before, after in zip(middle, readings())]
    assert gathered == pytest.approx(direct)
