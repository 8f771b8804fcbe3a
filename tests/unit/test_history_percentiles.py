"""The history's percentiles are the same numbers on every back end: per group, per kind and per time bucket, against
numpy over the same rows (SQLite here; tests/process/test_history_db_backends.py runs these on PostgreSQL, which
computes them itself with percentile_cont)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sqlalchemy as sa

from dashboard.history.stats import ALONE, GROUP_SQL, GROUPS, LOADED, MONOLITH_GROUP
from dashboard.history.store import SAMPLE_ROWS, HistoryStore
from tests.unit.test_history_charts import NOW, seed


@pytest.fixture
def history_db(tmp_path):
    return tmp_path / "h.sqlite3"


def rows_of(store: HistoryStore, where: str = "1 = 1") -> list[tuple]:
    with store.engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT id, ts, latency_ms, {GROUP_SQL}, batch_size FROM requests"
                                    f" WHERE ok = 1 AND latency_ms IS NOT NULL AND {where}")).all()


def test_time_buckets_are_numpys_percentiles_of_the_same_sample(history_db):
    store = HistoryStore(history_db)
    seed(store, SAMPLE_ROWS + 5_000, start=NOW - 3600, span=3600)  # above SAMPLE_ROWS: every 2nd id on both
    since, start, width = NOW - 3000, NOW - 3010, 60.0
    buckets, step = store.bucket_percentiles(since, start, width)
    assert step == 2
    sample = [r for r in rows_of(store, f"ts >= {since!r}") if r[0] % 2 == 0]
    for group in GROUPS:
        mine = [r for r in sample if r[3] == group]
        keys = sorted({math.floor((r[1] - start) / width) for r in mine})
        got = buckets[group]
        assert got.width == width and list(got.start) == [start + k * width for k in keys]
        for i, key in enumerate(keys):
            values = [r[2] for r in mine if math.floor((r[1] - start) / width) == key]
            assert got.count[i] == len(values)
            assert got.p50[i] == pytest.approx(np.percentile(values, 50), rel=1e-12)
            assert got.p95[i] == pytest.approx(np.percentile(values, 95), rel=1e-12)
            assert got.max[i] == max(values)


def test_an_unsampled_view_reads_every_request_and_an_empty_group_has_no_buckets(history_db):
    store = HistoryStore(history_db)
    for i in range(40):
        store.add({"kind": "service", "ok": True, "ts": NOW + i, "latency_ms": 5.0 + i, "batch_size": 1, "queue_ms": 0.1})
    buckets, step = store.bucket_percentiles(NOW, NOW, 10.0)
    assert step == 1
    assert buckets[ALONE].count.tolist() == [10, 10, 10, 10]
    assert buckets[ALONE].p50.tolist() == pytest.approx([9.5, 19.5, 29.5, 39.5])
    assert buckets[ALONE].max.tolist() == [14.0, 24.0, 34.0, 44.0]
    assert buckets[MONOLITH_GROUP].start.size == 0 and buckets[LOADED].count.size == 0


def test_group_and_kind_percentiles_match_numpy_and_an_empty_group_reads_none(history_db):
    store = HistoryStore(history_db)
    rng = np.random.default_rng(7)
    latencies = rng.lognormal(3, 0.5, 501)
    for i, latency in enumerate(latencies):  # no monolith runs at all
        store.add({"kind": "service", "ok": True, "ts": NOW + i, "latency_ms": float(latency),
                   "batch_size": 1 if i % 3 else 2 + i % 7, "queue_ms": 0.5})
    store.add({"kind": "service", "ok": False, "ts": NOW, "error_code": "bad_image"})  # failures are not counted
    groups = store.group_percentiles()
    rows = rows_of(store)
    for group in (ALONE, LOADED):
        values = [r[2] for r in rows if r[3] == group]
        assert groups[group]["count"] == len(values)
        for p in (5, 25, 50, 75, 95):
            assert groups[group][f"p{p}"] == pytest.approx(np.percentile(values, p), rel=1e-12)
        assert (groups[group]["min"], groups[group]["max"]) == (min(values), max(values))
    assert (groups[ALONE]["batch_min"], groups[ALONE]["batch_max"]) == (1, 1)
    assert (groups[LOADED]["batch_min"], groups[LOADED]["batch_max"]) == (2, 8)
    assert groups[MONOLITH_GROUP] == {"count": 0, "p5": None, "p25": None, "p50": None, "p75": None, "p95": None,
                                      "min": None, "max": None, "batch_min": None, "batch_max": None}
    summary = store.summary(groups)
    assert summary["service"]["p50"] == pytest.approx(np.percentile(latencies, 50), rel=1e-12)
    assert summary["service"]["p95"] == pytest.approx(np.percentile(latencies, 95), rel=1e-12)
    assert summary["service"]["errors"] == 1
    assert summary["monolith"]["p50"] is None and summary["speedup"] is None
