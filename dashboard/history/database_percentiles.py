"""The history's percentiles computed inside PostgreSQL (``percentile_cont ... WITHIN GROUP``): per group, per kind
and per time bucket, in one query each, so no row and no index walk per percentile crosses the connection.

The numbers are the ones the SQLite path computes (store.py's index walks and stats.py's numpy code):
``percentile_cont(q)`` interpolates linearly between the two rows around rank ``q * (n - 1)``, which is numpy's
default percentile; the bucket of a row is ``FLOOR((ts - start) / width)`` on doubles, as numpy computes it; and
the time view reads the same systematic sample (every k-th id) on both. SQLite has no ``percentile_cont``, so it
keeps its own path; tests run the same assertions on both (tests/process/test_history_db_backends.py).
"""

from __future__ import annotations

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import schema
from .stats import ALONE, GROUP_SQL, GROUPS, Buckets

_requests = schema.requests.c
#: a row's group (stats.py), as a column of the query
_GROUP = sa.literal_column(f"({GROUP_SQL})")
_SUCCESS = sa.and_(_requests.ok == 1, _requests.latency_ms.isnot(None))


def _percentile_columns(percents) -> list:
    """One ``percentile_cont`` per percent over ``latency_ms`` (PostgreSQL sorts the group once for all of them)."""
    return [sa.func.percentile_cont(p / 100).within_group(_requests.latency_ms).label(f"p{p}") for p in percents]


def group_percentiles(conn: Connection, percents) -> dict[int, dict]:
    """{group: {"count": n, "p<p>": ms..., "min", "max", "batch_min", "batch_max"}} for every group (stats.py),
    None where a group has no rows: what ``HistoryStore.group_percentiles`` returns on SQLite."""
    query = (sa.select(_GROUP.label("grp"), sa.func.count().label("count"), *_percentile_columns(percents),
                       sa.func.min(_requests.latency_ms).label("min"), sa.func.max(_requests.latency_ms).label("max"),
                       sa.func.min(_requests.batch_size).label("batch_min"),
                       sa.func.max(_requests.batch_size).label("batch_max"))
             .where(_SUCCESS).group_by(sa.literal_column("grp")))
    found = {int(row["grp"]): dict(row) for row in conn.execute(query).mappings()}
    out: dict[int, dict] = {}
    for group in GROUPS:
        row = found.get(group)
        stats: dict = {"count": int(row["count"]) if row else 0}
        for p in percents:
            stats[f"p{p}"] = _number(row[f"p{p}"]) if row else None
        stats["min"], stats["max"] = (_number(row["min"]), _number(row["max"])) if row else (None, None)
        stats["batch_min"] = stats["batch_max"] = None
        if row and group == ALONE:
            stats["batch_min"] = stats["batch_max"] = 1  # what "alone" means
        elif row:
            stats["batch_min"], stats["batch_max"] = row["batch_min"], row["batch_max"]
        out[group] = stats
    return out


def kind_percentiles(conn: Connection, kind: str, percents) -> dict:
    """{"count": n, "p<p>": ms...} of the successful requests of one kind (None for each percent when there are none)."""
    row = conn.execute(sa.select(sa.func.count().label("count"), *_percentile_columns(percents))
                       .where(_SUCCESS, _requests.kind == kind)).mappings().one()
    return {"count": int(row["count"]), **{f"p{p}": _number(row[f"p{p}"]) for p in percents}}


def bucket_percentiles(conn: Connection, since_ts: float, sample_step: int, start: float,
                       width: float) -> dict[int, Buckets]:
    """Per group, p50, p95, max and count per ``width``-second bucket from ``start``, of the successful requests at
    or after ``since_ts`` (every ``sample_step``-th id when above 1); empty buckets left out, as stats.py does."""
    bucket = sa.func.floor((_requests.ts - sa.bindparam("start", start, sa.Float)) / sa.bindparam("width", width, sa.Float))
    query = (sa.select(_GROUP.label("grp"), bucket.label("bucket"), sa.func.count().label("count"),
                       *_percentile_columns((50, 95)), sa.func.max(_requests.latency_ms).label("max"))
             .where(_SUCCESS, _requests.ts >= float(since_ts))
             .group_by(sa.literal_column("grp"), sa.literal_column("bucket"))
             .order_by(sa.literal_column("grp"), sa.literal_column("bucket")))
    if sample_step > 1:
        query = query.where(_requests.id % int(sample_step) == 0)
    rows = conn.execute(query).all()
    out = {}
    for group in GROUPS:
        mine = [r for r in rows if int(r[0]) == group]
        keys = np.array([float(r[1]) for r in mine])
        out[group] = Buckets(start + keys * width, width, np.array([int(r[2]) for r in mine], dtype=np.int64),
                             *(np.array([float(r[i]) for r in mine]) for i in (3, 4, 5)))
    return out


def _number(value) -> float | None:
    return None if value is None else float(value)
