"""SIGTERM of a real ``python -m dashboard serve`` with history rows still queued: every answered request keeps its row.

The test holds the SQLite write lock while it sends requests, so the
dashboard's writer thread cannot write and the rows wait in its queue (the
requests are still answered at once: they only enqueue). It signals the
dashboard, then lets the lock go: the drain writes every row and the process
still exits 0 within 2 s.
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from tests.support.helpers import ROOT, run_threads
from tests.support.standin import shade_png

READY = re.compile(r"Dashboard ready at http://127\.0\.0\.1:(\d+)/")
CLIENTS = 4
REQUESTS = 50


@pytest.fixture
def dashboard(tmp_path, standin_server):
    """A real dashboard on a free port in front of an in-process stand-in backend: (process, port, db path, output)."""
    env = {**os.environ, "WARMSERVE_DASH_DATA_DIR": str(tmp_path / "data"), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "dashboard", "serve", "--port", "0", "--backend", standin_server()],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    port: list[int] = []
    ready = threading.Event()

    def collect() -> None:
        for line in process.stdout:
            lines.append(line)
            match = READY.search(line)
            if match:
                port.append(int(match.group(1)))
                ready.set()
        ready.set()

    threading.Thread(target=collect, daemon=True).start()
    ready.wait(60)
    assert port, "".join(lines)
    yield process, port[0], tmp_path / "data" / "history.sqlite3", lines
    if process.poll() is None:
        process.kill()
        process.wait(10)


def test_sigterm_with_queued_history_rows_loses_none_and_stops_within_2_s(dashboard):
    process, port, db_path, lines = dashboard
    image = shade_png(3)
    answered = [0] * CLIENTS
    lock = sqlite3.connect(db_path, isolation_level=None, timeout=10)
    lock.execute("BEGIN IMMEDIATE")  # the dashboard's writer now waits: its rows stay queued

    def client(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for i in range(REQUESTS):
            conn.request("POST", f"/api/v1/classify?name=c{n}-{i}.png", body=image, headers={"Content-Type": "image/png"})
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                answered[n] += 1
        conn.close()

    run_threads(client, CLIENTS)
    assert sum(answered) == CLIENTS * REQUESTS, "".join(lines)
    signalled = time.monotonic()
    process.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    lock.execute("ROLLBACK")  # the writer may write again: the drain has to finish the queue
    lock.close()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        pytest.fail("still running 5 s after SIGTERM\n" + "".join(lines))
    elapsed = time.monotonic() - signalled
    assert process.returncode == 0, "".join(lines)
    assert elapsed < 2.0, f"stopped after {elapsed:.2f} s\n" + "".join(lines)
    with sqlite3.connect(db_path) as conn:
        images = {name for (name,) in conn.execute("SELECT image FROM requests WHERE ok = 1")}
    assert images == {f"c{n}-{i}.png" for n in range(CLIENTS) for i in range(REQUESTS)}
