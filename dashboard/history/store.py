"""The latency history: every request, service or monolith, in one table shared by all users and replicas.

SQLite by default (a file: WAL mode, a busy timeout), PostgreSQL when ``--db``
is a ``postgresql://`` URL: one code path on SQLAlchemy Core (``engine.py``,
the table in ``schema.py``, its versioned upgrade in ``migrations.py``, run when
a store opens). Queries are portable SQL; the dialect-specific parts are
SQLite's ``INDEXED BY`` hint, the cast in :meth:`HistoryStore.activity`, and the
percentiles, which PostgreSQL computes itself (``percentile_cont``,
``database_percentiles.py``) where SQLite walks an index or hands rows to numpy
(the same numbers either way).
Several threads and processes (background callbacks, ``python -m dashboard
monolith``, other replicas on PostgreSQL) can write at once and the history
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
import threading
import time
from pathlib import Path
from typing import Mapping

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..common.formatting import format_time
from ..common.sanitize import csv_cell
from . import database_percentiles, schema
from .engine import IMMEDIATE, create_history_engine, sqlite_file
from .migrations import migrate
from .records import KINDS, MONOLITH, SERVICE, clean_record
from .stats import (ALONE, GROUP_KEYS, GROUP_SQL, GROUPS, LOADED, MONOLITH_GROUP, Buckets, LatencyArrays,
                    bucket_percentiles)
from .writer import FLUSH_TIMEOUT_S, HistoryWriter

log = logging.getLogger(__name__)

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

COLUMNS = schema.COLUMNS
#: every column a row may set (all but the id); a batch insert names them all
ROW_COLUMNS = COLUMNS[1:]
#: one row, every column, as portable SQL with named parameters (tests seed SQLite files with it directly)
_INSERT_ALL = f"INSERT INTO requests ({', '.join(ROW_COLUMNS)}) VALUES ({', '.join(':' + k for k in ROW_COLUMNS)})"

_SUCCESS = "ok = 1 AND latency_ms IS NOT NULL"


class HistoryStore:
    """The request history in one database (a SQLite file path, or a URL: engine.py); safe to share across threads
    and processes. Opening one upgrades the database's schema when it is older (migrations.py).

    ``max_rows`` keeps only the newest rows, ``max_age_s`` drops older rows; None or 0 turns either off.
    ``path`` is the SQLite file (a Path), or the URL with its password hidden for any other database.
    """

    def __init__(self, location: str | Path, *, max_rows: int | None = DEFAULT_MAX_ROWS,
                 max_age_s: float | None = DEFAULT_MAX_AGE_S):
        self._engine = create_history_engine(location)
        self._pid = os.getpid()
        self.path: Path | str = sqlite_file(self._engine.url) or self._engine.url.render_as_string(hide_password=True)
        self.dialect = self._engine.dialect.name
        self.max_rows = int(max_rows) if max_rows else None
        self.max_age_s = float(max_age_s) if max_age_s else None
        self._inserts = 0
        self._inserts_lock = threading.Lock()
        self._background: HistoryWriter | None = None
        migrate(self._engine)
        self._prune_quietly()

    @classmethod
    def from_settings(cls, settings) -> "HistoryStore":
        """The store at ``settings.db_path`` (path or URL) with the retention the dashboard settings ask for."""
        return cls(settings.db_path, max_rows=settings.history_max_rows,
                   max_age_s=settings.history_max_age_days * 24 * 3600.0)

    @property
    def engine(self) -> sa.Engine:
        """This process's engine: a forked child starts a fresh pool instead of sharing its parent's connections."""
        if os.getpid() != self._pid:
            self._engine.dispose(close=False)
            self._pid = os.getpid()
        return self._engine

    def _read(self) -> Connection:
        return self.engine.connect()

    def _table(self, index: str) -> str:
        """``requests``, read through ``index`` on SQLite (its planner picks a worse one for some of these queries)."""
        return f"requests INDEXED BY {index}" if self.dialect == "sqlite" else "requests"

    def journal_mode(self) -> str | None:
        """SQLite's journal mode ("wal"); None for other databases."""
        if self.dialect != "sqlite":
            return None
        with self._read() as conn:
            return str(conn.exec_driver_sql("PRAGMA journal_mode").scalar()).lower()

    def dispose(self) -> None:
        """Close the pooled connections (the store still works: it opens new ones when needed)."""
        self.engine.dispose()

    def add(self, record: Mapping[str, object]) -> int:
        """Insert one record now, on this thread (keys from :data:`COLUMNS`; ``ts`` defaults to now); return its id."""
        row = _prepared(_checked(record))
        with self.engine.connect().execution_options(**IMMEDIATE) as conn, conn.begin():
            new_id = conn.execute(schema.requests.insert(), row).inserted_primary_key[0]
        self._count_inserts(1)
        return int(new_id)

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
        with self.engine.connect().execution_options(**IMMEDIATE) as conn, conn.begin():
            conn.execute(schema.requests.insert(), rows)
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
        where = "WHERE kind = :kind" if kind else ""
        with self._read() as conn:
            rows = conn.execute(sa.text(f"SELECT * FROM requests {where} ORDER BY id DESC LIMIT :limit"),
                                {"kind": kind, "limit": int(limit)}).mappings().all()
        return [clean_record(dict(r)) for r in rows]

    def latencies(self, kind: str, window: int = SUMMARY_WINDOW) -> list[dict]:
        """Successful requests of one kind, oldest first: ts, latency_ms, image, top1_label, batch_size, model."""
        self.flush()
        with self._read() as conn:
            rows = conn.execute(sa.text(
                "SELECT * FROM (SELECT id, ts, latency_ms, image, top1_label, batch_size, model FROM requests"
                f" WHERE kind = :kind AND {_SUCCESS} ORDER BY id DESC LIMIT :window) AS newest ORDER BY id"),
                {"kind": kind, "window": int(window)}).mappings().all()
        return [dict(r) for r in rows]

    def group_percentiles(self, percents=PERCENTS) -> dict[int, dict]:
        """Exact percentiles of the round trip per group (stats.py):
        {group: {"count": n, "p5": ms, ..., "min", "max", "batch_min", "batch_max"}}. PostgreSQL computes them
        (``percentile_cont``); SQLite, which has no such function, is read down the (ok, group, latency) index."""
        self.flush()
        if self.dialect == "postgresql":  # one query, percentile_cont in the database (database_percentiles.py)
            with self._read() as conn:
                return database_percentiles.group_percentiles(conn, percents)
        out: dict[int, dict] = {}
        where = f"ok = 1 AND ({GROUP_SQL}) = :group AND latency_ms IS NOT NULL"
        table = self._table(schema.GROUP_LATENCY.name)
        with self._read() as conn:
            for group in GROUPS:
                stats = _ranked_percentiles(conn, table, where, {"group": group}, (0, *percents, 100))
                stats["min"], stats["max"] = stats.pop("p0"), stats.pop("p100")  # both ends of the index: no scan
                stats["batch_min"] = stats["batch_max"] = None
                if stats["count"] and group == ALONE:
                    stats["batch_min"] = stats["batch_max"] = 1  # what "alone" means
                elif stats["count"]:
                    stats["batch_min"], stats["batch_max"] = conn.execute(sa.text(
                        f"SELECT MIN(batch_size), MAX(batch_size) FROM {table} WHERE {where}"), {"group": group}).one()
                out[group] = stats
        return out

    def group_values(self, group: int, limit: int) -> list[float]:
        """The newest ``limit`` round trips (ms) of one group (stats.py), for drawing each as a point."""
        self.flush()
        with self._read() as conn:
            return list(conn.execute(sa.text(
                f"SELECT latency_ms FROM requests WHERE ok = 1 AND ({GROUP_SQL}) = :group AND latency_ms IS NOT NULL"
                " ORDER BY id DESC LIMIT :limit"), {"group": int(group), "limit": int(limit)}).scalars())

    def activity(self, bin_s: float = ACTIVITY_BIN_S) -> tuple[np.ndarray, np.ndarray]:
        """(bin starts in Unix seconds, successful requests per bin), oldest first: where the history has data.

        One pass down the (ok, ts) index, grouped in order (no sort on SQLite): a few hundred rows, whatever the
        table size. (SQLite's CAST truncates, PostgreSQL's rounds: times are positive, so FLOOR there.)
        """
        self.flush()
        binned = "CAST(ts / :bin_s AS INTEGER)" if self.dialect == "sqlite" else "CAST(FLOOR(ts / :bin_s) AS BIGINT)"
        with self._read() as conn:
            rows = conn.execute(sa.text(f"SELECT {binned} AS bin, COUNT(*) FROM requests WHERE {_SUCCESS}"
                                        " GROUP BY bin ORDER BY bin"), {"bin_s": float(bin_s)}).all()
        if not rows:
            return np.empty(0), np.empty(0, dtype=np.int64)
        table = np.array([tuple(r) for r in rows], dtype=np.int64)
        return table[:, 0] * float(bin_s), table[:, 1]

    def time_span(self, since_ts: float) -> tuple[float | None, float | None, int]:
        """(first, last, count) of the successful requests at or after ``since_ts`` (the (ok, ts) index)."""
        self.flush()
        with self._read() as conn:
            first, last, count = conn.execute(sa.text(
                "SELECT MIN(ts), MAX(ts), COUNT(*) FROM requests WHERE ok = 1 AND ts >= :since AND latency_ms IS NOT NULL"),
                {"since": float(since_ts)}).one()
        return first, last, int(count)

    def time_bounds(self, since_ts: float) -> tuple[float | None, float | None]:
        """(first, last) time of the successful requests at or after ``since_ts``: two index lookups, no scan
        (count them with :meth:`activity`)."""
        self.flush()
        where = "WHERE ok = 1 AND ts >= :since AND latency_ms IS NOT NULL"
        with self._read() as conn:
            first, last = (conn.execute(sa.text(f"SELECT ts FROM requests {where} ORDER BY ts {order} LIMIT 1"),
                                        {"since": float(since_ts)}).scalar() for order in ("ASC", "DESC"))
        return first, last

    def latency_arrays(self, since_ts: float = 0.0, max_rows: int = SAMPLE_ROWS, count: int | None = None) -> LatencyArrays:
        """Successful requests at or after ``since_ts`` as numpy arrays (time, round trip, group, batch), oldest first.

        More than ``max_rows`` of them: every k-th by id (a systematic sample, ``sample_step`` k), so one refresh
        never turns 100,000 rows into Python objects. Read through the covering (ok, ts, ...) index as plain
        tuples straight from the driver (numpy reads those many times faster than row objects). ``count``: how
        many there are, when the caller knows already (:meth:`time_span`), which saves counting them again.
        """
        if count is None:
            count = self.time_span(since_ts)[2]
        step = _sample_step(count, max_rows)
        sample = "" if step == 1 else f" AND id % {int(step)} = 0"
        with self._read() as conn:
            rows = conn.execute(sa.text(
                f"SELECT ts, latency_ms, {GROUP_SQL}, batch_size FROM requests"
                f" WHERE ok = 1 AND ts >= :since AND latency_ms IS NOT NULL{sample} ORDER BY ts DESC"),
                {"since": float(since_ts)}).cursor.fetchall()  # the driver's tuples, not Row objects
        return LatencyArrays.from_rows(rows, sample_step=step)

    def bucket_percentiles(self, since_ts: float, start: float, width: float,
                           count: int | None = None) -> tuple[dict[int, Buckets], int]:
        """({group: p50, p95, max and count per ``width``-second bucket from ``start``}, sample step) of the
        successful requests at or after ``since_ts``: the time view's lines.

        Both back ends read the same systematic sample (:meth:`latency_arrays`: every k-th id beyond
        :data:`SAMPLE_ROWS`) and give the same numbers: PostgreSQL computes them (``percentile_cont``, one query,
        a few hundred rows back); SQLite's rows come to numpy (stats.bucket_percentiles).
        """
        if count is None:
            count = self.time_span(since_ts)[2]
        if self.dialect == "postgresql":
            step = _sample_step(count, SAMPLE_ROWS)
            with self._read() as conn:
                return database_percentiles.bucket_percentiles(conn, since_ts, step, start, width), step
        data = self.latency_arrays(since_ts, count=count)
        return {g: bucket_percentiles(data.ts[data.group == g], data.latency_ms[data.group == g], start, width)
                for g in GROUPS}, data.sample_step

    def points(self, since_ts: float, limit: int) -> list[dict]:
        """Successful requests at or after ``since_ts`` (at most the newest ``limit``), oldest first, with what
        their hover text explains (:data:`POINT_COLUMNS` and ``group``); text cleaned and capped."""
        self.flush()
        with self._read() as conn:
            rows = conn.execute(sa.text(
                f"SELECT {', '.join(POINT_COLUMNS)}, {GROUP_SQL} AS grp FROM requests"
                f" WHERE {_SUCCESS} AND ts >= :since ORDER BY id DESC LIMIT :limit"),
                {"since": float(since_ts), "limit": int(limit)}).mappings().all()
        return [clean_record(dict(r)) for r in reversed(rows)]

    def counts(self) -> dict[str, dict[str, int]]:
        """{kind: {"ok": n, "errors": m}} over the whole table."""
        self.flush()
        out = {kind: {"ok": 0, "errors": 0} for kind in KINDS}
        with self._read() as conn:
            for kind, ok, n in conn.execute(sa.text("SELECT kind, ok, COUNT(*) FROM requests GROUP BY kind, ok")):
                out[kind]["ok" if ok else "errors"] = int(n)
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
        with self._read() as conn:
            if self.dialect == "postgresql":
                stats = database_percentiles.kind_percentiles(conn, SERVICE, (50, 95))
            else:
                stats = _ranked_percentiles(conn, "requests", f"kind = :kind AND {_SUCCESS}", {"kind": SERVICE}, (50, 95))
        return {"p50": stats["p50"], "p95": stats["p95"]}

    def signature(self) -> list:
        """Changes whenever a row is added or the table is cleared (cheap; lets the UI skip redraws)."""
        self.flush()
        with self._read() as conn:
            count, last = conn.execute(sa.text("SELECT COUNT(*), MAX(id) FROM requests")).one()
        return [int(count), last]

    def image_name(self, sha256: str) -> str | None:
        """The name this image was last recorded under (the server's own record, not what a browser says)."""
        self.flush()
        with self._read() as conn:
            return conn.execute(sa.text("SELECT image FROM requests WHERE sha256 = :sha256 AND image IS NOT NULL"
                                        " ORDER BY id DESC LIMIT 1"), {"sha256": str(sha256)}).scalar()

    def prune(self) -> int:
        """Apply the retention (rows beyond ``max_rows``, rows older than ``max_age_s``); return how many went."""
        deleted = 0
        with self.engine.connect().execution_options(**IMMEDIATE) as conn, conn.begin():
            if self.max_age_s:
                cutoff = time.time() - self.max_age_s
                for kind in KINDS:  # one range scan per kind on the (kind, ts) index
                    deleted += conn.execute(sa.text("DELETE FROM requests WHERE kind = :kind AND ts < :cutoff"),
                                            {"kind": kind, "cutoff": cutoff}).rowcount
            if self.max_rows:
                # ids only grow (AUTOINCREMENT, a sequence) and deletions take the oldest: this keeps the newest
                deleted += conn.execute(sa.text("DELETE FROM requests WHERE id <= (SELECT MAX(id) FROM requests) - :n"),
                                        {"n": self.max_rows}).rowcount
        if deleted:
            log.info("History retention removed %d old rows from %s", deleted, self.path)
        return deleted

    def _prune_quietly(self) -> None:
        try:
            self.prune()
        except sa.exc.SQLAlchemyError:  # retention is housekeeping: never fail an insert or a start for it
            log.warning("Could not apply the history retention to %s", self.path, exc_info=True)

    def clear(self) -> int:
        """Delete every record; return how many there were."""
        self.flush()
        with self.engine.connect().execution_options(**IMMEDIATE) as conn, conn.begin():
            return conn.execute(sa.text("DELETE FROM requests")).rowcount

    def to_csv(self) -> str:
        """The whole history as CSV (oldest first) with a readable UTC ``time`` column."""
        self.flush()
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=["time", *COLUMNS], extrasaction="ignore")
        writer.writeheader()
        with self._read() as conn:
            for row in conn.execute(sa.text("SELECT * FROM requests ORDER BY id")).mappings():
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


def _sample_step(count: int, max_rows: int) -> int:
    """k of the every-k-th-id sample that keeps ``count`` rows to at most ``max_rows`` (1: every row)."""
    return max(1, math.ceil(count / max_rows)) if count else 1


def _ranked_percentiles(conn: Connection, table: str, where: str, params: dict, percents) -> dict:
    """{"count": n, "p<p>": ms...} of ``latency_ms`` over the rows of ``table`` (``requests``, maybe with an index
    hint) that ``where`` selects, exact (numpy's linear interpolation; SQLite's path, PostgreSQL has percentile_cont): the two values around each rank, read with
    ``ORDER BY latency_ms LIMIT 2 OFFSET rank`` down an index that ends in latency_ms (the database walks the
    index; no row reaches Python). Percentiles above the median walk from the slow end (``DESC``), so p95 and
    the maximum cost 5 % and 0 % of a walk, not 95 %."""
    count = conn.execute(sa.text(f"SELECT COUNT(*) FROM {table} WHERE {where}"), params).scalar()
    stats: dict = {"count": int(count)}
    ascending = sa.text(f"SELECT latency_ms FROM {table} WHERE {where} ORDER BY latency_ms LIMIT 2 OFFSET :skip")
    descending = sa.text(f"SELECT latency_ms FROM {table} WHERE {where} ORDER BY latency_ms DESC LIMIT 2 OFFSET :skip")
    for p in percents:
        stats[f"p{p}"] = None
        if count:
            position = (count - 1) * p / 100
            low = int(position)
            if p <= 50:  # an OFFSET walks the index: from the fast end below the median, from the slow end above
                values = list(conn.execute(ascending, {**params, "skip": low}).scalars())
            else:
                values = list(conn.execute(descending, {**params, "skip": max(count - 2 - low, 0)}).scalars())[::-1]
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
