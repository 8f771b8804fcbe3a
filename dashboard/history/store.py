"""The latency history: every request, service or monolith, in one SQLite table shared by all users.

Stdlib ``sqlite3`` in WAL mode with a busy timeout, one short connection per
operation, so several threads and several worker processes (background
callbacks, ``python -m dashboard monolith``) can write at once and the history
survives restarts. The rows themselves are built by ``records.py``.

Stored text is not trusted: :meth:`HistoryStore.add` is the last line that
cleans and caps every text column (file names at 255 characters, see
``common/sanitize.py``), and the CSV export neutralises spreadsheet formulas.
Retention keeps the table bounded: at most ``max_rows`` rows (the newest) and
none older than ``max_age_s``, enforced when a store opens and every
:data:`PRUNE_EVERY` inserts after that.

Writes off the request path: :meth:`HistoryStore.start_writer` gives the store
one background writer (``writer.py``: a bounded queue, one thread, one
transaction per batch); :meth:`HistoryStore.submit` then only enqueues, and
falls back to a direct :meth:`HistoryStore.add` when the queue is full or the
writer is closed. Every reader of a store (``recent``, ``summary``, ``to_csv``,
``image_name``...) first :meth:`flushes <HistoryStore.flush>` what this store
queued, so a request's row is visible to the same process as soon as the
request has returned. Other processes (background jobs, the command-line
monolith) write directly, as they have no writer.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path
from typing import Mapping

import numpy as np

from ..common.formatting import format_time
from ..common.sanitize import csv_cell
from .records import KINDS, MONOLITH, SERVICE, clean_record
from .stats import ALONE, GROUP_KEYS, GROUP_SQL, GROUPS, LOADED, MONOLITH_GROUP, LatencyArrays
from .writer import FLUSH_TIMEOUT_S, HistoryWriter

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000
#: ``latencies(kind)`` returns at most this many most recent rows
SUMMARY_WINDOW = 10_000
#: the summary and the charts look at this many most recent successful requests (the default retention: all of them)
HISTORY_WINDOW = 100_000
#: the percentiles the summary and the distribution view show
PERCENTS = (5, 25, 50, 75, 95)
#: the time view reads at most this many rows per refresh (a systematic sample beyond that)
SAMPLE_ROWS = 20_000
#: the activity map's bin (s): gaps in the history are found at this resolution
ACTIVITY_BIN_S = 60.0
#: the columns :meth:`HistoryStore.points` returns (what a point's hover text explains)
POINT_COLUMNS = ("id", "ts", "kind", "image", "model", "latency_ms", "queue_ms", "decode_ms", "preprocess_ms",
                 "inference_ms", "backend_total_ms", "import_ms", "model_load_ms", "batch_size", "top1_label", "top1_p")
#: retention defaults (DashboardSettings.history_max_rows / history_max_age_days override them)
DEFAULT_MAX_ROWS = 100_000
DEFAULT_MAX_AGE_S = 365 * 24 * 3600.0
#: retention is enforced when a store opens and after every this many inserts through it
PRUNE_EVERY = 500
#: default bound of the background writer's queue (DashboardSettings.history_queue overrides it)
DEFAULT_QUEUE = 10_000

COLUMNS = (
    "id", "ts", "kind", "source", "image", "sha256", "model", "ok", "error_code", "error_message",
    "latency_ms", "queue_ms", "decode_ms", "preprocess_ms", "inference_ms", "backend_total_ms",
    "import_ms", "model_load_ms", "batch_size", "top1_index", "top1_label", "top1_p",
)
#: every column a row may set (all but the id); a batch insert names them all
ROW_COLUMNS = COLUMNS[1:]
_INSERT_ALL = f"INSERT INTO requests ({', '.join(ROW_COLUMNS)}) VALUES ({', '.join(':' + k for k in ROW_COLUMNS)})"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('service', 'monolith')),
    source TEXT,
    image TEXT,
    sha256 TEXT,
    model TEXT,
    ok INTEGER NOT NULL,
    error_code TEXT,
    error_message TEXT,
    latency_ms REAL,
    queue_ms REAL,
    decode_ms REAL,
    preprocess_ms REAL,
    inference_ms REAL,
    backend_total_ms REAL,
    import_ms REAL,
    model_load_ms REAL,
    batch_size INTEGER,
    top1_index INTEGER,
    top1_label TEXT,
    top1_p REAL
);
CREATE INDEX IF NOT EXISTS requests_kind_ts ON requests (kind, ts);
"""

#: the indexes the history's charts read through (added to existing databases when a store opens: no row changes)
_INDEXES = f"""
CREATE INDEX IF NOT EXISTS requests_kind_ok_latency ON requests (kind, ok, latency_ms);
CREATE INDEX IF NOT EXISTS requests_ok_ts ON requests (ok, ts, latency_ms, kind, batch_size, queue_ms);
CREATE INDEX IF NOT EXISTS requests_group_latency ON requests (ok, ({GROUP_SQL}), latency_ms, batch_size);
"""


class HistoryStore:
    """The request history in one SQLite file; cheap to create, safe to share across threads and processes.

    ``max_rows`` keeps only the newest rows, ``max_age_s`` drops older rows; None or 0 turns either off.
    """

    def __init__(self, path: str | Path, *, max_rows: int | None = DEFAULT_MAX_ROWS,
                 max_age_s: float | None = DEFAULT_MAX_AGE_S):
        self.path = Path(path)
        self.max_rows = int(max_rows) if max_rows else None
        self.max_age_s = float(max_age_s) if max_age_s else None
        self._local = threading.local()
        self._inserts = 0
        self._inserts_lock = threading.Lock()
        self._background: HistoryWriter | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as conn:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                log.warning("SQLite at %s refused WAL mode (got %s); concurrent writers may wait", self.path, mode)
            conn.executescript(_SCHEMA)
            conn.executescript(_INDEXES)
        self._prune_quietly()

    @classmethod
    def from_settings(cls, settings) -> "HistoryStore":
        """The store at ``settings.db_path`` with the retention the dashboard settings ask for."""
        return cls(settings.db_path, max_rows=settings.history_max_rows,
                   max_age_s=settings.history_max_age_days * 24 * 3600.0)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.row_factory = sqlite3.Row
        return conn

    def _writer(self) -> sqlite3.Connection:
        """This thread's long-lived connection for inserts (opening one costs ~1 ms; an insert ~0.03 ms)."""
        conn, pid = getattr(self._local, "conn", None), getattr(self._local, "pid", None)
        if conn is None or pid != os.getpid():  # never reuse a connection across a fork
            conn = self._local.conn = self._connect()
            self._local.pid = os.getpid()
        return conn

    def journal_mode(self) -> str:
        with closing(self._connect()) as conn:
            return str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()

    def add(self, record: Mapping[str, object]) -> int:
        """Insert one record now, on this thread (keys from :data:`COLUMNS`; ``ts`` defaults to now); return its id."""
        row = _prepared(_checked(record))
        names = ", ".join(row)
        marks = ", ".join(f":{k}" for k in row)
        cursor = self._writer().execute(f"INSERT INTO requests ({names}) VALUES ({marks})", row)
        self._count_inserts(1)
        return int(cursor.lastrowid)

    # --- the background writer ---------------------------------------------------------------------

    def start_writer(self, max_queue: int = DEFAULT_QUEUE) -> None:
        """Give this store its one background writer (idempotent); ``max_queue`` 0 keeps every write direct."""
        if self._background is None and max_queue:
            self._background = HistoryWriter(self._write_rows, max_queue)

    def submit(self, record: Mapping[str, object]) -> None:
        """Record ``record`` (stamped now): queued for the writer, or written directly without one or when full."""
        row = _checked(record)
        if self._background is None or not self._background.submit(row):
            self.add(row)

    def flush(self, timeout_s: float = FLUSH_TIMEOUT_S) -> bool:
        """Wait (at most ``timeout_s``) until every record submitted so far is written; True when it was."""
        return self._background.flush(timeout_s) if self._background is not None else True

    def close(self, timeout_s: float = FLUSH_TIMEOUT_S) -> bool:
        """Drain and stop the background writer (later submits write directly); True when everything was written."""
        return self._background.close(timeout_s) if self._background is not None else True

    @property
    def writer(self) -> HistoryWriter | None:
        return self._background

    def _write_rows(self, records) -> None:
        """Insert a batch of submitted records in one transaction (the writer thread's job)."""
        rows = [dict.fromkeys(ROW_COLUMNS) | _prepared(record) for record in records]
        conn = self._writer()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(_INSERT_ALL, rows)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        self._count_inserts(len(rows))

    def _count_inserts(self, count: int) -> None:
        with self._inserts_lock:
            before = self._inserts
            self._inserts += count
            due = self._inserts // PRUNE_EVERY > before // PRUNE_EVERY
        if due:
            self._prune_quietly()

    # --- readers: each sees every record this store was given first (flush) -----------------------------

    def recent(self, limit: int = 50, kind: str | None = None) -> list[dict]:
        """The newest ``limit`` records, newest first, text cleaned and capped (also rows stored before the caps)."""
        self.flush()
        where, params = ("WHERE kind = ?", [kind]) if kind else ("", [])
        with closing(self._connect()) as conn:
            rows = conn.execute(f"SELECT * FROM requests {where} ORDER BY id DESC LIMIT ?", [*params, int(limit)]).fetchall()
        return [clean_record(dict(r)) for r in rows]

    def latencies(self, kind: str, window: int = SUMMARY_WINDOW) -> list[dict]:
        """Successful requests of one kind, oldest first: ts, latency_ms, image, top1_label, batch_size, model."""
        self.flush()
        with closing(self._connect()) as conn:
            rows = conn.execute(
                "SELECT * FROM (SELECT id, ts, latency_ms, image, top1_label, batch_size, model FROM requests"
                " WHERE kind = ? AND ok = 1 AND latency_ms IS NOT NULL ORDER BY id DESC LIMIT ?) ORDER BY id",
                (kind, int(window)),
            ).fetchall()
        return [dict(r) for r in rows]

    def group_percentiles(self, percents=PERCENTS) -> dict[int, dict]:
        """Exact percentiles of the round trip per group (stats.py), read down the (ok, group, latency) index:
        {group: {"count": n, "p5": ms, ..., "min", "max", "batch_min", "batch_max"}}."""
        self.flush()
        out: dict[int, dict] = {}
        where = f"ok = 1 AND ({GROUP_SQL}) = ? AND latency_ms IS NOT NULL"
        with closing(self._connect()) as conn:
            for group in GROUPS:
                stats = _ranked_percentiles(conn, where, (group,), (0, *percents, 100), "requests_group_latency")
                stats["min"], stats["max"] = stats.pop("p0"), stats.pop("p100")  # both ends of the index: no scan
                stats["batch_min"] = stats["batch_max"] = None
                if stats["count"] and group == ALONE:
                    stats["batch_min"] = stats["batch_max"] = 1  # what "alone" means
                elif stats["count"]:
                    stats["batch_min"], stats["batch_max"] = conn.execute(
                        f"SELECT MIN(batch_size), MAX(batch_size) FROM requests"
                        f" INDEXED BY requests_group_latency WHERE {where}", (group,)).fetchone()
                out[group] = stats
        return out

    def group_values(self, group: int, limit: int) -> list[float]:
        """The newest ``limit`` round trips (ms) of one group (stats.py), for drawing each as a point."""
        self.flush()
        with closing(self._connect()) as conn:
            return [r[0] for r in conn.execute(
                f"SELECT latency_ms FROM requests WHERE ok = 1 AND ({GROUP_SQL}) = ? AND latency_ms IS NOT NULL"
                " ORDER BY id DESC LIMIT ?", (int(group), int(limit)))]

    def activity(self, bin_s: float = ACTIVITY_BIN_S) -> tuple[np.ndarray, np.ndarray]:
        """(bin starts in Unix seconds, successful requests per bin), oldest first: where the history has data.

        One pass down the (ok, ts) index, grouped in order (no sort): a few hundred rows, whatever the table size.
        """
        self.flush()
        with closing(self._connect()) as conn:
            rows = conn.execute("SELECT CAST(ts / ? AS INTEGER) AS bin, COUNT(*) FROM requests"
                                " WHERE ok = 1 AND latency_ms IS NOT NULL GROUP BY bin", (float(bin_s),)).fetchall()
        if not rows:
            return np.empty(0), np.empty(0, dtype=np.int64)
        table = np.array(rows, dtype=np.int64)
        return table[:, 0] * float(bin_s), table[:, 1]

    def time_span(self, since_ts: float) -> tuple[float | None, float | None, int]:
        """(first, last, count) of the successful requests at or after ``since_ts`` (the (ok, ts) index)."""
        self.flush()
        with closing(self._connect()) as conn:
            first, last, count = conn.execute(
                "SELECT MIN(ts), MAX(ts), COUNT(*) FROM requests WHERE ok = 1 AND ts >= ? AND latency_ms IS NOT NULL",
                (float(since_ts),)).fetchone()
        return first, last, int(count)

    def time_bounds(self, since_ts: float) -> tuple[float | None, float | None]:
        """(first, last) time of the successful requests at or after ``since_ts``: two index lookups, no scan
        (count them with :meth:`activity`)."""
        self.flush()
        where = "WHERE ok = 1 AND ts >= ? AND latency_ms IS NOT NULL"
        with closing(self._connect()) as conn:
            first, last = (conn.execute(f"SELECT ts FROM requests {where} ORDER BY ts {order} LIMIT 1",
                                        (float(since_ts),)).fetchone() for order in ("ASC", "DESC"))
        return (first[0] if first else None), (last[0] if last else None)

    def latency_arrays(self, since_ts: float = 0.0, max_rows: int = SAMPLE_ROWS, count: int | None = None) -> LatencyArrays:
        """Successful requests at or after ``since_ts`` as numpy arrays (time, round trip, group, batch), oldest first.

        More than ``max_rows`` of them: every k-th by id (a systematic sample, ``sample_step`` k), so one refresh
        never turns 100,000 rows into Python objects. Read through the covering (ok, ts, ...) index as plain
        tuples (numpy reads those ten times faster than ``sqlite3.Row``). ``count``: how many there are, when the
        caller knows already (:meth:`time_span`), which saves counting them again.
        """
        if count is None:
            count = self.time_span(since_ts)[2]
        step = max(1, math.ceil(count / max_rows)) if count else 1
        sample = "" if step == 1 else f" AND id % {int(step)} = 0"
        with closing(self._connect()) as conn:
            conn.row_factory = None
            rows = conn.execute(
                f"SELECT ts, latency_ms, {GROUP_SQL}, batch_size FROM requests"
                f" WHERE ok = 1 AND ts >= ? AND latency_ms IS NOT NULL{sample} ORDER BY ts DESC",
                (float(since_ts),)).fetchall()
        return LatencyArrays.from_rows(rows, sample_step=step)

    def points(self, since_ts: float, limit: int) -> list[dict]:
        """Successful requests at or after ``since_ts`` (at most the newest ``limit``), oldest first, with what
        their hover text explains (:data:`POINT_COLUMNS` and ``group``); text cleaned and capped."""
        self.flush()
        with closing(self._connect()) as conn:
            rows = conn.execute(
                f"SELECT {', '.join(POINT_COLUMNS)}, {GROUP_SQL} AS grp FROM requests"
                " WHERE ok = 1 AND latency_ms IS NOT NULL AND ts >= ? ORDER BY id DESC LIMIT ?",
                (float(since_ts), int(limit))).fetchall()
        return [clean_record(dict(r)) for r in reversed(rows)]

    def counts(self) -> dict[str, dict[str, int]]:
        """{kind: {"ok": n, "errors": m}} over the whole table."""
        self.flush()
        out = {kind: {"ok": 0, "errors": 0} for kind in KINDS}
        with closing(self._connect()) as conn:
            for kind, ok, n in conn.execute("SELECT kind, ok, COUNT(*) FROM requests GROUP BY kind, ok"):
                out[kind]["ok" if ok else "errors"] = n
        return out

    def summary(self, groups: dict[int, dict] | None = None) -> dict:
        """Per kind: count (succeeded), errors (failed), p50, p95 (ms); per group (stats.py: alone, loaded,
        monolith) count, p5..p95, min, max and batch sizes; and the like-with-like speedup, monolith p50 / alone p50.

        Counts over the whole table (the retention bounds it); exact percentiles from the indexes, no row loop.
        """
        counts = self.counts()
        groups = groups if groups is not None else self.group_percentiles()
        result: dict = {kind: {"count": counts[kind]["ok"], "errors": counts[kind]["errors"]} for kind in KINDS}
        result[MONOLITH].update(p50=groups[MONOLITH_GROUP]["p50"], p95=groups[MONOLITH_GROUP]["p95"])
        result[SERVICE].update(self._service_percentiles())
        result["groups"] = {GROUP_KEYS[g]: groups[g] for g in GROUPS}
        result["speedup"] = speedup(groups[MONOLITH_GROUP]["p50"], groups[ALONE]["p50"])
        result["speedup_loaded"] = speedup(groups[MONOLITH_GROUP]["p50"], groups[LOADED]["p50"])
        return result

    def _service_percentiles(self) -> dict:
        """p50 and p95 of every successful service request, alone or not (the (kind, ok, latency) index)."""
        with closing(self._connect()) as conn:
            stats = _ranked_percentiles(conn, "kind = ? AND ok = 1 AND latency_ms IS NOT NULL", (SERVICE,), (50, 95))
        return {"p50": stats["p50"], "p95": stats["p95"]}

    def signature(self) -> list:
        """Changes whenever a row is added or the table is cleared (cheap; lets the UI skip redraws)."""
        self.flush()
        with closing(self._connect()) as conn:
            count, last = conn.execute("SELECT COUNT(*), MAX(id) FROM requests").fetchone()
        return [count, last]

    def image_name(self, sha256: str) -> str | None:
        """The name this image was last recorded under (the server's own record, not what a browser says)."""
        self.flush()
        with closing(self._connect()) as conn:
            row = conn.execute("SELECT image FROM requests WHERE sha256 = ? AND image IS NOT NULL ORDER BY id DESC LIMIT 1",
                               (str(sha256),)).fetchone()
        return row["image"] if row else None

    def prune(self) -> int:
        """Apply the retention (rows beyond ``max_rows``, rows older than ``max_age_s``); return how many went."""
        deleted = 0
        with closing(self._connect()) as conn:
            if self.max_age_s:
                cutoff = time.time() - self.max_age_s
                for kind in KINDS:  # one range scan per kind on the (kind, ts) index
                    deleted += conn.execute("DELETE FROM requests WHERE kind = ? AND ts < ?", (kind, cutoff)).rowcount
            if self.max_rows:
                # ids only grow (AUTOINCREMENT) and deletions take the oldest, so this keeps the newest max_rows
                deleted += conn.execute("DELETE FROM requests WHERE id <= (SELECT MAX(id) FROM requests) - ?",
                                        (self.max_rows,)).rowcount
        if deleted:
            log.info("History retention removed %d old rows from %s", deleted, self.path)
        return deleted

    def _prune_quietly(self) -> None:
        try:
            self.prune()
        except sqlite3.Error:  # retention is housekeeping: never fail an insert or a start for it
            log.warning("Could not apply the history retention to %s", self.path, exc_info=True)

    def clear(self) -> int:
        """Delete every record; return how many there were."""
        self.flush()
        with closing(self._connect()) as conn:
            return conn.execute("DELETE FROM requests").rowcount

    def to_csv(self) -> str:
        """The whole history as CSV (oldest first) with a readable UTC ``time`` column."""
        self.flush()
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=["time", *COLUMNS], extrasaction="ignore")
        writer.writeheader()
        with closing(self._connect()) as conn:
            for row in conn.execute("SELECT * FROM requests ORDER BY id"):
                record = dict(row)
                record["time"] = format_time(record["ts"])
                writer.writerow({key: csv_cell(value) for key, value in record.items()})
        return buffer.getvalue()


def _checked(record: Mapping[str, object]) -> dict:
    """The record's known columns, stamped now unless it has a ``ts``; ValueError for an unknown kind."""
    row = {k: record[k] for k in COLUMNS if k in record and k != "id"}
    row.setdefault("ts", time.time())
    if row.get("kind") not in KINDS:
        raise ValueError(f"Expected kind to be one of {', '.join(KINDS)}. Received: kind={str(row.get('kind'))[:40]!r}")
    return row


def _prepared(row: dict) -> dict:
    """A checked row ready to store: ``ok`` as 0/1 and every text column cleaned and capped."""
    row = dict(row)
    row["ok"] = 1 if row.get("ok") else 0
    return clean_record(row)


# --- statistics -----------------------------------------------------------------------------------


def _ranked_percentiles(conn: sqlite3.Connection, where: str, params: tuple, percents, index: str | None = None) -> dict:
    """{"count": n, "p<p>": ms...} of ``latency_ms`` over the rows ``where`` selects, exact (numpy's linear
    interpolation): the two values around each rank, read with ``ORDER BY latency_ms LIMIT 2 OFFSET rank``
    down an index that ends in latency_ms (SQLite walks the index; no row reaches Python). Percentiles above
    the median walk from the slow end (``DESC``), so p95 and the maximum cost 5 % and 0 % of a walk, not 95 %."""
    table = f"requests INDEXED BY {index}" if index else "requests"
    count = conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {where}", params).fetchone()[0]
    stats: dict = {"count": int(count)}
    for p in percents:
        stats[f"p{p}"] = None
        if count:
            position = (count - 1) * p / 100
            low = int(position)
            if p <= 50:  # an OFFSET walks the index: from the fast end below the median, from the slow end above
                values = [r[0] for r in conn.execute(
                    f"SELECT latency_ms FROM {table} WHERE {where} ORDER BY latency_ms LIMIT 2 OFFSET ?",
                    (*params, low))]
            else:
                values = [r[0] for r in conn.execute(
                    f"SELECT latency_ms FROM {table} WHERE {where} ORDER BY latency_ms DESC LIMIT 2 OFFSET ?",
                    (*params, max(count - 2 - low, 0)))][::-1]
                if low == count - 1:  # the top value itself: nothing above it to interpolate with
                    values = values[-1:]
            stats[f"p{p}"] = values[0] + (values[-1] - values[0]) * (position - low)
    return stats


def percentile(values: list[float], p: float) -> float | None:
    """The p-th percentile (numpy's linear interpolation), ignoring missing values; None for no values."""
    clean = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.percentile(clean, p)) if clean else None


def speedup(monolith_p50: float | None, service_p50: float | None) -> float | None:
    """How many times faster the service is at the median; None until both have data."""
    if not monolith_p50 or not service_p50:
        return None
    return monolith_p50 / service_p50
