"""The history's tables and indexes as SQLAlchemy objects: one definition for SQLite and PostgreSQL.

``requests`` holds every request (service and monolith); its indexes are the
ones the history's charts and summary read through (see store.py). The schema
is created and upgraded by migrations.py, never by ``create_all`` alone. ``kept_uploads`` holds the
accepted images when the history is shared by replicas (``common/kept_uploads.py``).
"""

from __future__ import annotations

import sqlalchemy as sa

from .records import KINDS
from .stats import GROUP_SQL

metadata = sa.MetaData()

#: a 64-bit id on PostgreSQL; SQLite's AUTOINCREMENT needs exactly INTEGER PRIMARY KEY
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

requests = sa.Table(
    "requests", metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("source", sa.Text),
    sa.Column("image", sa.Text),
    sa.Column("sha256", sa.Text),
    sa.Column("model", sa.Text),
    sa.Column("ok", sa.Integer, nullable=False),
    sa.Column("error_code", sa.Text),
    sa.Column("error_message", sa.Text),
    sa.Column("latency_ms", sa.Float),
    sa.Column("queue_ms", sa.Float),
    sa.Column("decode_ms", sa.Float),
    sa.Column("preprocess_ms", sa.Float),
    sa.Column("inference_ms", sa.Float),
    sa.Column("backend_total_ms", sa.Float),
    sa.Column("import_ms", sa.Float),
    sa.Column("model_load_ms", sa.Float),
    sa.Column("batch_size", sa.Integer),
    sa.Column("top1_index", sa.Integer),
    sa.Column("top1_label", sa.Text),
    sa.Column("top1_p", sa.Float),
    sa.CheckConstraint(f"kind IN ({', '.join(repr(k) for k in KINDS)})", name="requests_kind"),
    sqlite_autoincrement=True,  # ids only grow, so retention by id keeps the newest rows
)

#: the first schema's index (retention by age, per kind)
KIND_TS = sa.Index("requests_kind_ts", requests.c.kind, requests.c.ts)
#: the charts' indexes (schema version 2): percentiles per kind, the time view, percentiles per group
KIND_OK_LATENCY = sa.Index("requests_kind_ok_latency", requests.c.kind, requests.c.ok, requests.c.latency_ms)
OK_TS = sa.Index("requests_ok_ts", requests.c.ok, requests.c.ts, requests.c.latency_ms, requests.c.kind,
                 requests.c.batch_size, requests.c.queue_ms)
GROUP_LATENCY = sa.Index("requests_group_latency", requests.c.ok, sa.text(f"({GROUP_SQL})"), requests.c.latency_ms,
                         requests.c.batch_size)

COLUMNS = tuple(column.name for column in requests.columns)

#: accepted images kept by sha256 when the history is on PostgreSQL, so every replica sees them (schema version 3;
#: common/kept_uploads.py's DatabaseUploads: at most 200 rows and 500 MB, the least recently kept go first)
kept_uploads = sa.Table(
    "kept_uploads", metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("last_used", sa.Float, nullable=False),
)
