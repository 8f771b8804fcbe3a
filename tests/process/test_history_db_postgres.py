"""The history on a real PostgreSQL (tests/support/postgres.py): the versioned schema, replicas starting together,
the background writer's read-your-writes, retention, and a dashboard process given a postgresql:// URL."""

from __future__ import annotations

import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa

from dashboard.history.migrations import SCHEMA_VERSION
from dashboard.history.records import SERVICE, error_record
from dashboard.history.store import HistoryStore
from tests.support.standin import shade_png


def schema_rows(store: HistoryStore) -> tuple[list[int], set[str]]:
    with store.engine.connect() as conn:
        versions = list(conn.execute(sa.text("SELECT version FROM schema_version ORDER BY version")).scalars())
        indexes = set(conn.execute(sa.text("SELECT indexname FROM pg_indexes WHERE tablename = 'requests'")).scalars())
    return versions, indexes


def test_replicas_starting_together_apply_each_schema_step_once(postgres_url):
    with ThreadPoolExecutor(6) as pool:  # six dashboards opening one new database at once (the advisory lock)
        stores = list(pool.map(lambda _: HistoryStore(postgres_url), range(6)))
    versions, indexes = schema_rows(stores[0])
    assert versions == list(range(1, SCHEMA_VERSION + 1))
    assert {"requests_kind_ts", "requests_kind_ok_latency", "requests_ok_ts", "requests_group_latency"} <= indexes
    stores[1].add({"kind": SERVICE, "ok": True, "latency_ms": 4.0, "image": "a.png"})
    assert [r["image"] for r in stores[5].recent()] == ["a.png"]  # one shared history
    for store in stores:
        store.dispose()


def test_the_writer_flushes_before_reads_and_retention_keeps_the_newest(postgres_url):
    store = HistoryStore(postgres_url, max_rows=50)
    store.start_writer()
    for n in range(120):
        store.submit(error_record(SERVICE, f"p-{n:03d}.png", None, "bad_image", "x\x00y"))  # NUL: PostgreSQL refuses it
    rows = store.recent(200)  # flushed first: every row this store was given is there
    assert rows[0]["image"] == "p-119.png" and rows[0]["error_message"] == "xy"
    assert store.close(5) and store.writer.failed == 0
    assert store.prune() == 70 and [r["image"] for r in store.recent(200)][-1] == "p-070.png"
    store.dispose()


def test_two_dashboard_processes_share_one_postgresql_history_and_log_no_password(postgres_url, standin_server,
                                                                                  dashboard):
    url = postgres_url.replace("postgresql://postgres@", "postgresql://postgres:s3cret-pw@")  # trust: any password
    backend = standin_server()
    replicas = [dashboard(backend, "--db", url) for _ in range(2)]
    for n, replica in enumerate(replicas):
        request = urllib.request.Request(f"{replica.url}/api/v1/classify?name=via-{n}.png", data=shade_png(n),
                                         headers={"Content-Type": "image/png"}, method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
        with urllib.request.urlopen(f"{replica.url}/api/v1/history?limit=1", timeout=30) as response:
            assert json.load(response)["records"][0]["image"] == f"via-{n}.png"  # its own read flushed its writer
    for replica in replicas:  # either replica shows both requests: one shared history
        with urllib.request.urlopen(f"{replica.url}/api/v1/history?limit=10", timeout=30) as response:
            images = sorted(r["image"] for r in json.load(response)["records"])
        assert images == ["via-0.png", "via-1.png"]
    for replica in replicas:
        replica.stop_within(10)
        assert "s3cret-pw" not in replica.output(), replica.output()
        assert "postgresql://postgres:***@127.0.0.1" in replica.output()
