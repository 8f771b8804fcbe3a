"""The latency history with two writer processes on the same database, SQLite file and PostgreSQL alike
(``history_db``; the rest: tests/unit/test_dashboard_history.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from dashboard.history.records import SERVICE
from dashboard.history.store import HistoryStore
from tests.support.helpers import ROOT


def test_two_processes_write_to_the_same_database(history_db):
    path = history_db
    HistoryStore(path)
    script = textwrap.dedent(f"""
        import sys
        from dashboard.history.records import service_record
        from dashboard.history.store import HistoryStore
        store = HistoryStore({str(path)!r})
        for i in range(100):
            store.add(service_record(f"{{sys.argv[1]}}-{{i}}", None, {{"predictions": []}}, 1.0))
    """)
    writers = [subprocess.Popen([sys.executable, "-c", script, name], cwd=ROOT) for name in ("p1", "p2")]
    assert [w.wait(60) for w in writers] == [0, 0]
    assert HistoryStore(path).counts()[SERVICE]["ok"] == 200
