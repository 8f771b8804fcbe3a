"""The history database's location (path or URL) and its versioned schema upgrade, on SQLite files.

A history file made before versions existed is upgraded in place with nothing lost; a second start changes
nothing; a database from a newer dashboard is refused with a clear message. The same on PostgreSQL:
tests/process/test_history_db_postgres.py.
"""

from __future__ import annotations

import sqlite3

import pytest

from dashboard.history.engine import database_url, printable_location
from dashboard.history.migrations import SCHEMA_VERSION, SchemaTooNew
from dashboard.history.store import HistoryStore
from dashboard.settings import settings_from

#: the schema every history file had before schema versions (the stdlib store's, with its first index only)
OLD_SCHEMA = """
CREATE TABLE requests (id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('service', 'monolith')), source TEXT, image TEXT, sha256 TEXT, model TEXT,
    ok INTEGER NOT NULL, error_code TEXT, error_message TEXT, latency_ms REAL, queue_ms REAL, decode_ms REAL,
    preprocess_ms REAL, inference_ms REAL, backend_total_ms REAL, import_ms REAL, model_load_ms REAL,
    batch_size INTEGER, top1_index INTEGER, top1_label TEXT, top1_p REAL);
CREATE INDEX requests_kind_ts ON requests (kind, ts);
"""


def versions(path) -> list[int]:
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY version")]


def indexes(path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")}


def test_a_history_file_from_before_versions_is_upgraded_in_place_with_nothing_lost(tmp_path):
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_SCHEMA)
        conn.executemany("INSERT INTO requests (ts, kind, ok, latency_ms, image, batch_size, queue_ms)"
                         " VALUES (?, ?, ?, ?, ?, 1, 0.2)",
                         [(1_790_000_000.0 + i, "service" if i % 3 else "monolith", i % 5 != 0, 10.0 + i, f"old-{i}.png")
                          for i in range(30)])
    store = HistoryStore(path, max_age_s=None)
    assert versions(path) == list(range(1, SCHEMA_VERSION + 1))
    assert {"requests_kind_ts", "requests_kind_ok_latency", "requests_ok_ts", "requests_group_latency"} <= indexes(path)
    rows = store.recent(100)
    assert len(rows) == 30 and rows[-1]["image"] == "old-0.png" and rows[0]["latency_ms"] == 39.0
    assert store.counts()["service"] == {"ok": 16, "errors": 4}
    new_id = store.add({"kind": "service", "ok": True, "latency_ms": 5.0, "image": "new.png"})
    assert new_id == 31  # AUTOINCREMENT carries on after the old rows
    HistoryStore(path, max_age_s=None)  # a second start: nothing to do, nothing done
    assert versions(path) == list(range(1, SCHEMA_VERSION + 1)) and len(store.recent(100)) == 31


def test_a_new_file_starts_at_the_current_version(tmp_path):
    HistoryStore(tmp_path / "h.sqlite3")
    assert versions(tmp_path / "h.sqlite3") == list(range(1, SCHEMA_VERSION + 1))


def test_a_database_from_a_newer_dashboard_is_refused_with_a_clear_message(tmp_path):
    path = tmp_path / "h.sqlite3"
    HistoryStore(path)
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_version (version, applied_at, description) VALUES (?, 0, 'future')",
                     (SCHEMA_VERSION + 1,))
    with pytest.raises(SchemaTooNew, match=f"schema version {SCHEMA_VERSION + 1}"):
        HistoryStore(path)


def test_db_accepts_a_path_or_a_url_and_logs_no_password(tmp_path):
    assert settings_from({"data_dir": tmp_path}, environ={}).db_path == tmp_path / "history.sqlite3"
    url = "postgresql://warm:s3cret@db.internal:5432/history"
    settings = settings_from({"data_dir": tmp_path}, environ={"WARMSERVE_DASH_DB": url})
    assert settings.db_path == url  # a URL is kept as written (a Path would fold its "//")
    assert database_url(url).drivername == "postgresql+psycopg"
    assert database_url("postgresql+psycopg://u@h/d").drivername == "postgresql+psycopg"
    assert database_url(tmp_path / "h.sqlite3").database == str(tmp_path / "h.sqlite3")
    assert database_url(f"sqlite:///{tmp_path}/x.sqlite3").database == f"{tmp_path}/x.sqlite3"
    assert "s3cret" not in printable_location(url) and "db.internal" in printable_location(url)
    with pytest.raises(ValueError, match="postgresql://"):
        database_url("mysql://u:p@h/d")
