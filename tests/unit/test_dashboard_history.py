"""The latency history on SQLite and PostgreSQL (``history_db``): persistence, concurrent writers (threads),
summary, clear, CSV; SQLite's WAL mode.

Here (the pure unit layer) ``history_db`` is a SQLite file; tests/process/test_history_db_backends.py runs the
same tests on a real PostgreSQL. Two writer processes on one database: tests/process/test_dashboard_history.py."""

from __future__ import annotations

import csv
import io
from concurrent.futures import ThreadPoolExecutor

import pytest

from dashboard.history.records import MONOLITH, SERVICE, error_record, monolith_record, service_record
from dashboard.history.store import HistoryStore, percentile, speedup

REPLY = {"predictions": [{"index": 285, "label": "Egyptian cat", "p": 0.8}], "batch_size": 3, "model": "efficientnet-lite0",
         "timings_ms": {"queue": 0.5, "decode": 2.0, "preprocess": 1.0, "inference": 20.0, "total": 23.5}}
MONOLITH_RESULT = {"model": "efficientnet-lite0", "image": "/tmp/cat.png", "predictions": REPLY["predictions"],
                   "timings_ms": {"import": 2500.0, "model_load": 800.0, "preprocess": 5.0, "inference": 900.0, "total": 4300.0}}


@pytest.fixture
def history_db(tmp_path):
    return tmp_path / "h.sqlite3"


def test_sqlite_uses_wal_in_a_folder_it_creates(tmp_path):
    store = HistoryStore(tmp_path / "sub" / "history.sqlite3")
    assert store.journal_mode() == "wal" and (tmp_path / "sub" / "history.sqlite3").is_file()


def test_keeps_records_across_reopen(history_db):
    store = HistoryStore(history_db)
    store.add(service_record("cat.png", "ab" * 32, REPLY, 25.0))
    reopened = HistoryStore(history_db)
    [row] = reopened.recent()
    assert row["kind"] == SERVICE and row["image"] == "cat.png" and row["top1_label"] == "Egyptian cat"
    assert row["latency_ms"] == 25.0 and row["batch_size"] == 3 and row["inference_ms"] == 20.0 and row["ok"] == 1


def test_monolith_rows_as_the_command_line_records_them(history_db):
    path = history_db
    HistoryStore(path).add(monolith_record("cat.png", MONOLITH_RESULT, source="cli"))
    HistoryStore(path).add(monolith_record("junk.txt", {"error": {"code": "bad_image", "message": "not an image"}}, source="cli"))
    rows = HistoryStore(path).recent(kind=MONOLITH)
    assert [r["ok"] for r in rows] == [0, 1]
    ok = rows[1]
    assert ok["latency_ms"] == 4300.0 and ok["import_ms"] == 2500.0 and ok["model_load_ms"] == 800.0
    assert rows[0]["error_code"] == "bad_image"
    # measured wall time wins over the reported total when the dashboard ran it
    assert monolith_record("x", MONOLITH_RESULT, wall_ms=4700.0)["latency_ms"] == 4700.0


def test_summary_percentiles_and_speedup(history_db):
    store = HistoryStore(history_db)
    for ms in (10, 20, 30, 40, 50):
        store.add(service_record("a", None, REPLY, float(ms)))
    store.add(error_record(SERVICE, "b", None, "unavailable", "down"))
    store.add(monolith_record("a", MONOLITH_RESULT, wall_ms=3000.0))
    summary = store.summary()
    assert summary[SERVICE] == {"count": 5, "errors": 1, "p50": 30.0, "p95": pytest.approx(48.0)}
    assert summary[MONOLITH]["count"] == 1 and summary[MONOLITH]["p50"] == 3000.0
    assert summary["speedup"] is None  # batch 3: none of these ran alone, so no like-with-like speedup yet
    assert summary["speedup_loaded"] == pytest.approx(100.0)
    alone = {**REPLY, "batch_size": 1, "timings_ms": {**REPLY["timings_ms"], "queue": 0.2}}
    store.add(service_record("c", None, alone, 15.0))
    summary = store.summary()
    assert summary["groups"]["alone"]["count"] == 1 and summary["speedup"] == pytest.approx(200.0)


def test_percentile_and_speedup_edge_cases():
    assert percentile([], 50) is None
    assert percentile([7.0], 95) == 7.0
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert speedup(None, 10) is None and speedup(1000, None) is None and speedup(1000, 10) == 100


def test_threads_write_concurrently_without_losing_rows(history_db):
    store = HistoryStore(history_db)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: store.add(service_record(f"img-{i}", None, REPLY, float(i))), range(200)))
    assert store.counts()[SERVICE]["ok"] == 200


def test_clear_and_csv_export(history_db):
    store = HistoryStore(history_db)
    store.add(service_record("cat, with comma.png", None, REPLY, 12.5))
    store.add(monolith_record("cat.png", MONOLITH_RESULT))
    rows = list(csv.DictReader(io.StringIO(store.to_csv())))
    assert [r["kind"] for r in rows] == ["service", "monolith"]
    assert rows[0]["image"] == "cat, with comma.png" and rows[0]["latency_ms"] == "12.5"
    assert rows[0]["time"].endswith("+00:00") and rows[1]["import_ms"] == "2500.0"
    assert store.clear() == 2
    assert store.recent() == [] and store.signature() == [0, None]
    assert store.to_csv().splitlines()[0].startswith("time,id,ts,kind")


def test_unknown_kind_is_refused(history_db):
    with pytest.raises(ValueError, match="kind"):
        HistoryStore(history_db).add({"kind": "other", "ok": True})
