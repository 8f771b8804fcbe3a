"""History writes off the request path: queued for one writer thread, flushed for readers, never lost.

- 8 threads x 200 API requests: every request has its row, each thread's rows
  in the order it made them, and /api/v1/history shows a request at once;
- a full queue writes on the request thread instead of dropping the row;
- a broken database is logged, and classify still answers.
"""

from __future__ import annotations

import csv
import io
import sqlite3
import threading

import pytest

from dashboard.app import create_app, stop_app
from dashboard.history.records import SERVICE, error_record
from dashboard.history.store import HistoryStore
from dashboard.history.writer import THREAD_NAME
from tests.support.dash import TINY_PNG, StubClient
from tests.support.helpers import run_threads

THREADS = 8
REQUESTS = 200


@pytest.fixture
def history_db(tmp_path):
    """A SQLite file here; tests/process/test_history_db_backends.py runs these tests on PostgreSQL too."""
    return tmp_path / "history.sqlite3"


@pytest.fixture
def api(dash_settings, history_db):
    """api(**settings) -> (Flask app, its HistoryStore at ``history_db``); the app is stopped (writer drained) after."""
    apps = []

    def make(**overrides):
        app = create_app(dash_settings(**{"db_path": history_db, **overrides}), StubClient())
        apps.append(app)
        return app.server, app.server.extensions["warmserve"]["store"]

    yield make
    for app in apps:
        stop_app(app)


def classify(http, name: str):
    return http.post(f"/api/v1/classify?name={name}", data=TINY_PNG, content_type="image/png")


def test_a_request_is_in_the_api_history_as_soon_as_it_returned(api):
    server, _store = api()
    http = server.test_client()
    for n in range(20):
        assert classify(http, f"photo-{n}.png").status_code == 200
        newest = http.get("/api/v1/history?limit=1").get_json()["records"][0]
        assert newest["image"] == f"photo-{n}.png"


def test_8_threads_x_200_requests_lose_no_row_and_keep_each_threads_order(api):
    server, store = api()
    answered = [0] * THREADS

    def client(thread: int) -> None:
        http = server.test_client()
        for n in range(REQUESTS):
            if classify(http, f"t{thread}-{n:03d}.png").status_code == 200:
                answered[thread] += 1

    run_threads(client, THREADS)
    assert answered == [REQUESTS] * THREADS
    rows = list(csv.DictReader(io.StringIO(store.to_csv())))  # what "Download CSV" gives a user
    assert len(rows) == THREADS * REQUESTS
    for thread in range(THREADS):
        mine = [row for row in rows if row["image"].startswith(f"t{thread}-")]
        assert [row["image"] for row in mine] == [f"t{thread}-{n:03d}.png" for n in range(REQUESTS)]
        assert [int(row["id"]) for row in mine] == sorted(int(row["id"]) for row in mine)
    assert store.writer.overflowed == 0 and store.writer.failed == 0


def test_a_full_queue_writes_on_the_callers_thread_instead_of_dropping(history_db, monkeypatch):
    store = HistoryStore(history_db)
    release, writer_stuck = threading.Event(), threading.Event()
    write_rows = store._write_rows

    def stuck_writer(rows):
        if threading.current_thread().name == THREAD_NAME:
            writer_stuck.set()
            assert release.wait(20), "the test never released the writer"
        write_rows(rows)

    monkeypatch.setattr(store, "_write_rows", stuck_writer)
    store.start_writer(max_queue=2)
    store.submit(error_record(SERVICE, "first.png", None, "bad_image", "x"))
    assert writer_stuck.wait(10)
    for n in range(10):
        store.submit(error_record(SERVICE, f"more-{n}.png", None, "bad_image", "x"))
    # Another process (a fresh store on the same file) already sees the rows the full queue could not take.
    elsewhere = HistoryStore(history_db)
    assert len(elsewhere.recent(100)) == 10 - 2
    assert store.writer.overflowed == 8
    release.set()
    assert store.flush(10)
    assert sorted(r["image"] for r in elsewhere.recent(100)) == sorted(["first.png", *(f"more-{n}.png" for n in range(10))])
    assert store.close(5)


def test_rows_submitted_after_close_are_written_directly(history_db):
    store = HistoryStore(history_db)
    store.start_writer()
    store.submit(error_record(SERVICE, "before.png", None, "bad_image", "x"))
    assert store.close(5)
    store.submit(error_record(SERVICE, "after.png", None, "bad_image", "x"))
    assert [r["image"] for r in HistoryStore(history_db).recent(10)] == ["after.png", "before.png"]


@pytest.mark.parametrize("queue", [10_000, 0], ids=["queued", "direct"])
def test_a_broken_database_does_not_break_classify(api, caplog, queue):
    server, store = api(history_queue=queue)
    http = server.test_client()
    with sqlite3.connect(store.path) as conn:
        conn.execute("DROP TABLE requests")
    for n in range(5):
        response = classify(http, f"photo-{n}.png")
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.get_json()["predictions"][0]["label"] == "Egyptian cat"
    store.flush(5)
    assert "no such table" in caplog.text
