"""History: every request (service and monolith) in one shared table (SQLite or PostgreSQL), charted, summed up,
exported, cleared.

    ids.py         the feature's component ids
    layout.py      the Latency history card, the summary cards and the recent-requests table
    figures.py     latency over time, service and monolith on one log axis
    callbacks.py   refresh, download the CSV, clear (admins only)
    controller.py  what those callbacks do, as plain functions tests call directly
    records.py     history rows built from replies, errors and monolith runs (pure functions)
    store.py       HistoryStore: the table's rows, its retention, summary and CSV (SQLite or PostgreSQL)
    engine.py      the SQLAlchemy engine for --db: a SQLite file (WAL, busy timeout) or a postgresql:// URL
    schema.py      the requests table and its indexes as SQLAlchemy objects
    migrations.py  the schema version and the ordered, idempotent steps run when a store opens
    writer.py      HistoryWriter: the queue and the one thread that writes rows in batches, off the request path
"""
