"""The history database's SQLAlchemy engine: a SQLite file by default, PostgreSQL (psycopg 3) when given a URL.

``--db`` / ``WARMSERVE_DASH_DB`` is either a file path (SQLite, as before) or a
URL: ``sqlite:///path``, ``postgresql://user:pw@host:5432/dbname`` (driven by
psycopg 3; ``postgresql+psycopg://`` is accepted too).

SQLite keeps what the stdlib store had: WAL mode, a busy timeout and
``synchronous=NORMAL`` on every connection (a connect event), and explicit
``BEGIN`` (``BEGIN IMMEDIATE`` for connections that ask for it with the
``sqlite_immediate`` execution option: the writer and the schema migration), so
a writer queues on the busy timeout instead of failing on a lock upgrade.
"""

from __future__ import annotations

import logging
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000
#: PostgreSQL connections one store keeps open (more are opened, up to the overflow, under load)
PG_POOL_SIZE = 4
PG_MAX_OVERFLOW = 12
#: an execution option: open this connection's transactions with ``BEGIN IMMEDIATE`` on SQLite (a no-op elsewhere)
IMMEDIATE = {"sqlite_immediate": True}


def is_url(location: str | Path) -> bool:
    """True when ``location`` is a database URL rather than a file path."""
    return "://" in str(location)


def database_url(location: str | Path) -> URL:
    """The SQLAlchemy URL for a history location: a path is a SQLite file; ``postgresql://`` means psycopg 3.

    ValueError for a URL of any other database (the history is tested on SQLite and PostgreSQL only).
    """
    if not is_url(location):
        return URL.create("sqlite", database=str(Path(location).expanduser().resolve()))
    url = make_url(str(location))
    if url.get_backend_name() == "postgresql":
        return url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() == "sqlite" and url.get_driver_name() in ("", "pysqlite"):
        return url
    raise ValueError(f"Expected the history database to be a file path, sqlite:///PATH or postgresql://... "
                     f"Received: {url.render_as_string(hide_password=True)!r}")


def sqlite_file(url: URL) -> Path | None:
    """The file a SQLite URL names (None for PostgreSQL or an in-memory database)."""
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def create_history_engine(location: str | Path) -> Engine:
    """An engine for the history at ``location`` (path or URL); SQLite's folder is created when missing."""
    url = database_url(location)
    if url.get_backend_name() == "sqlite":
        path = sqlite_file(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        # pooled connections move between threads (one at a time); sqlite3 would refuse that by default
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
                                  pool_size=5, max_overflow=-1)
        _sqlite_events(engine)
        return engine
    return sa.create_engine(url, pool_size=PG_POOL_SIZE, max_overflow=PG_MAX_OVERFLOW, pool_pre_ping=True)


def _sqlite_events(engine: Engine) -> None:
    """The pragmas on every new SQLite connection, and transactions SQLAlchemy begins itself (the documented
    pysqlite recipe: the driver's own implicit BEGIN is turned off)."""

    @sa.event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            mode = str(cursor.fetchone()[0]).lower()
            if mode not in ("wal", "memory"):
                log.warning("SQLite at %s refused WAL mode (got %s); concurrent writers may wait", engine.url.database, mode)
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @sa.event.listens_for(engine, "begin")
    def on_begin(connection) -> None:
        immediate = connection.get_execution_options().get("sqlite_immediate")
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def printable_location(location: str | Path) -> str:
    """``location`` fit for a log line: a URL with its password hidden, a path as it is."""
    if not is_url(location):
        return str(location)
    try:
        return make_url(str(location)).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(an unreadable database URL)"
