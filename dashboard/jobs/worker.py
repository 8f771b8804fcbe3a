"""``python -m dashboard jobs-worker``: the Celery worker that runs the dashboard's background jobs from Redis.

    python -m dashboard jobs-worker --redis redis://redis:6379/0 [--concurrency N] [--data-dir DIR] [--db PATH]

Same settings and ``WARMSERVE_DASH_*`` variables as ``serve`` (it needs
``--redis`` / ``WARMSERVE_DASH_REDIS``). It builds the same Dash app as the
dashboard, so Dash's ``CeleryManager`` registers the same tasks (named after
each background callback's source), stops the app's own threads (status
poller, history writer: a worker serves no page), then runs ``celery worker``
with a prefork pool of ``--concurrency`` processes (default: the monolith
cap plus its line, so callers waiting for a slot see their place instead of
sitting unseen in Celery's queue). Logs go to stderr. SIGTERM is Celery's
warm shutdown: no new job is taken, running ones finish, then it exits 0
(a second SIGTERM, or SIGQUIT, stops at once).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..settings import DashboardSettings, SettingsError

log = logging.getLogger(__name__)

WORKER_NAME = "warmserve-jobs@%h"


def add_parser(commands) -> argparse.ArgumentParser:
    """The ``jobs-worker`` subcommand on the dashboard's parser."""
    parser = commands.add_parser("jobs-worker", help="run the Celery worker for background jobs (needs --redis)")
    parser.add_argument("--redis", help="Redis URL shared with the dashboards (e.g. redis://redis:6379/0)")
    parser.add_argument("--concurrency", type=int, metavar="N",
                        help="jobs at once in this worker (default: monolith concurrency + monolith queue)")
    parser.add_argument("--data-dir", type=Path, help="kept uploads and history folder (as the dashboard's)")
    parser.add_argument("--db", dest="db_path", type=Path, help="history database (as the dashboard's)")
    parser.add_argument("--backend", help="ZeroMQ address of the model backend (as the dashboard's)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def worker_argv(settings: DashboardSettings, concurrency: int | None, log_level: str) -> list[str]:
    """The ``celery worker`` command line this worker runs."""
    processes = concurrency if concurrency is not None else settings.monolith_concurrency + settings.monolith_queue
    if processes < 1:
        raise SettingsError(f"Expected concurrency to be at least 1. Received: concurrency={processes!r}")
    return ["worker", f"--loglevel={log_level}", f"--concurrency={processes}", "--pool=prefork",
            "--without-gossip", "--without-mingle", f"--hostname={WORKER_NAME}"]


def run(settings: DashboardSettings, concurrency: int | None = None, log_level: str = "INFO") -> int:
    """Build the app (registering its jobs), stop its threads, and run the Celery worker until it is stopped."""
    if not settings.redis:
        raise SettingsError("Expected a Redis URL for the jobs worker (--redis or WARMSERVE_DASH_REDIS). Received: none")
    argv = worker_argv(settings, concurrency, log_level)
    from ..app import create_app, stop_app

    app = create_app(settings)
    stop_app(app)  # the worker only needs the registered callbacks, not the poller or the history writer
    celery_app = app.server.extensions["warmserve"]["jobs"].handle
    jobs = sorted(name for name in celery_app.tasks if name.startswith("background_callback_"))
    log.info("Jobs worker for %d background callback(s): celery %s", len(jobs), " ".join(argv))
    celery_app.worker_main(argv)
    return 0
