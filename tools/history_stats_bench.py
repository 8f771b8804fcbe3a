"""How long the history's statistics take at 100,000 rows: PostgreSQL computing its percentiles itself
(``percentile_cont``, dashboard/history/database_percentiles.py) against the portable path it used before (index
walks with ``OFFSET`` per percentile, and the time view's sampled rows brought to numpy), and SQLite.

    python -m tools.history_stats_bench [--rows 100000] [--rounds 7] [--no-vacuum]

Starts a throwaway PostgreSQL cluster as the tests do (tests/support/postgres.py: Debian's ``postgresql``
package) and a SQLite file, seeds both with the same rows (the last hour, a third each alone / under load, 1 %
monolith), then times each query the history view runs, the three candidates interleaved in every round
(the machine is shared: medians, and old/new as a ratio). ``--no-vacuum`` skips the ``VACUUM ANALYZE`` after the
bulk load: a table autovacuum has not visited yet, whose index-only scans still read the heap.
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from dashboard.common.formatting import viewer_zone
from dashboard.history import controller
from dashboard.history.store import _INSERT_ALL, ROW_COLUMNS, HistoryStore

NOW = 1_790_000_000.0


def seed(store: HistoryStore, rows: int) -> None:
    """``rows`` successful requests over the last hour: odd ones alone, even ones under load, every 100th a monolith."""
    rng = np.random.default_rng(0)
    times = np.sort(NOW - 3600 + rng.uniform(0, 3600, rows))
    batch = []
    for i in range(rows):
        monolith, alone = i % 100 == 99, i % 2 == 1
        median_ms = 4000 if monolith else (8 if alone else 40)
        row = dict.fromkeys(ROW_COLUMNS)
        row.update(ts=float(times[i]), kind="monolith" if monolith else "service", ok=1,
                   latency_ms=float(rng.lognormal(math.log(median_ms), 0.3)), image=f"img{i}.png",
                   batch_size=1 if monolith or alone else int(rng.integers(2, 17)),
                   queue_ms=None if monolith else (0.2 if alone else 3.0))
        batch.append(row)
    with store.engine.begin() as conn:
        conn.execute(sa.text(_INSERT_ALL), batch)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--no-vacuum", action="store_true", help="leave the PostgreSQL table as the bulk load left it")
    args = parser.parse_args(argv)
    from tests.support.postgres import start_postgres, stop_postgres  # the tests' throwaway cluster

    cluster = start_postgres()
    try:
        with cluster.admin() as conn:
            conn.execute("CREATE DATABASE bench")
        new = HistoryStore(cluster.url("bench"))
        lite = HistoryStore(Path(tempfile.mkdtemp(prefix="warmserve-bench-")) / "history.sqlite3")
        for store in (new, lite):
            seed(store, args.rows)
        if not args.no_vacuum:
            with new.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE requests")
        old = copy.copy(new)
        old.dialect = "postgresql (the portable path)"  # any name but "postgresql": the store takes SQLite's queries
        stores = {"pg new": new, "pg old": old, "sqlite": lite}
        zone = viewer_zone("UTC")
        parts = {
            "group_percentiles": lambda s: s.group_percentiles(),
            "summary": lambda s: s.summary(),
            "time view": lambda s: controller._time_view(s, zone),
            "whole history view": lambda s: controller.history_view(s, "UTC"),
        }
        took = {(name, part): [] for name in stores for part in parts}
        for _round in range(args.rounds):
            for part, run in parts.items():
                for name, store in stores.items():
                    started = time.perf_counter()
                    run(store)
                    took[(name, part)].append((time.perf_counter() - started) * 1000)
        print(f"{args.rows:,} rows, {args.rounds} interleaved rounds, medians"
              f"{' (not vacuumed)' if args.no_vacuum else ''}:")
        for part in parts:
            medians = {name: statistics.median(took[(name, part)]) for name in stores}
            print(f"  {part:20s} " + "  ".join(f"{name} {ms:7.1f} ms" for name, ms in medians.items())
                  + f"   old/new {medians['pg old'] / medians['pg new']:.2f}x")
        new.dispose()
        lite.dispose()
    finally:
        stop_postgres(cluster)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
