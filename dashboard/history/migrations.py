"""The history's schema version and the ordered steps that bring any database up to it, run when a store opens.

A ``schema_version`` table (one row per applied step: version, time, what it
did) on SQLite and PostgreSQL alike: one code path, readable with plain SQL on
either, and it records when each step ran (SQLite's ``PRAGMA user_version``
would need a second mechanism for PostgreSQL and keeps no history).

:func:`migrate` runs every step above the recorded version, in order, in ONE
transaction under a lock, so replicas or processes that start together apply
each step once and a failed step leaves the database as it was:
PostgreSQL takes a transaction-level advisory lock (its DDL is transactional);
SQLite opens the transaction with ``BEGIN IMMEDIATE`` (the database's write lock;
its DDL is transactional too). Each step is also idempotent (``IF NOT EXISTS``),
so a history file made before versions existed (it has the table and some
indexes, no ``schema_version``) is upgraded in place, its rows untouched.

Why not Alembic: a few additive steps, run by every dashboard replica at start
with nothing but the ``--db`` URL; Alembic would add a migration-script folder,
its ``env.py`` and configuration to ship and locate at run time, for no feature
this needs (no autogenerate, no downgrades). If the schema grows real
data migrations, these steps map one-to-one onto Alembic revisions.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from . import schema
from .engine import IMMEDIATE

log = logging.getLogger(__name__)

#: any fixed 64-bit number shared by every replica: PostgreSQL's advisory lock for the history's migrations
ADVISORY_LOCK_KEY = 0x77617276_68697374  # "warv" "hist"

versions = sa.Table(
    "schema_version", sa.MetaData(),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("applied_at", sa.Float, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
)


class SchemaTooNew(RuntimeError):
    """The database was upgraded by a newer dashboard than this one."""


def _create_index(conn: Connection, index: sa.Index) -> None:
    """``CREATE INDEX IF NOT EXISTS`` (both databases have it; SQLAlchemy cannot reflect expression indexes)."""
    conn.execute(sa.schema.CreateIndex(index, if_not_exists=True))


def _create_requests(conn: Connection) -> None:
    schema.requests.create(conn, checkfirst=True)  # a new table comes with every index of schema.py
    _create_index(conn, schema.KIND_TS)


def _create_chart_indexes(conn: Connection) -> None:
    for index in (schema.KIND_OK_LATENCY, schema.OK_TS, schema.GROUP_LATENCY):
        _create_index(conn, index)


def _create_kept_uploads(conn: Connection) -> None:
    schema.kept_uploads.create(conn, checkfirst=True)


#: (version, what it does, the step), in order; append only, never edit a released step
STEPS: tuple[tuple[int, str, Callable[[Connection], None]], ...] = (
    (1, "the requests table and its (kind, ts) index", _create_requests),
    (2, "the history charts' indexes: (kind, ok, latency), (ok, ts, ...), (ok, group, latency)", _create_chart_indexes),
    (3, "the kept_uploads table (accepted images by sha256, shared by replicas)", _create_kept_uploads),
)
SCHEMA_VERSION = STEPS[-1][0]


def current_version(conn: Connection) -> int:
    """The highest version applied (0 for a database from before versions, or an empty one)."""
    if not sa.inspect(conn).has_table(versions.name):
        return 0
    return int(conn.execute(sa.select(sa.func.max(versions.c.version))).scalar() or 0)


def migrate(engine: Engine) -> int:
    """Bring the database at ``engine`` up to :data:`SCHEMA_VERSION` (one transaction, under a lock); return
    the version it was at. SchemaTooNew when a newer dashboard has upgraded it already."""
    with engine.connect().execution_options(**IMMEDIATE) as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
        before = current_version(conn)
        if before > SCHEMA_VERSION:
            raise SchemaTooNew(f"The history database is at schema version {before}; this dashboard knows up to "
                               f"{SCHEMA_VERSION}. Upgrade the dashboard, or point --db at another database.")
        if before < SCHEMA_VERSION:
            versions.create(conn, checkfirst=True)
            for version, description, step in STEPS:
                if version > before:
                    step(conn)
                    conn.execute(versions.insert().values(version=version, applied_at=time.time(),
                                                          description=description))
            log.info("History database upgraded from schema version %d to %d", before, SCHEMA_VERSION)
    return before
