"""``python -m dashboard jobs-worker``: the Celery worker that runs the dashboard's background jobs from Redis.

    python -m dashboard jobs-worker --redis redis://redis:6379/0 [--concurrency N] [--data-dir DIR] [--db PATH]
                                    [--metrics-port 9106] [--stop-grace-s 20]

Same settings and ``WARMSERVE_DASH_*`` variables as ``serve`` (it needs
``--redis`` / ``WARMSERVE_DASH_REDIS``). It builds the same Dash app as the
dashboard, so Dash's ``CeleryManager`` registers the same tasks (named after
each background callback's source), stops the app's own threads (status
poller, history writer: a worker serves no page), then runs ``celery worker``
with a prefork pool of ``--concurrency`` processes (default: the monolith
cap plus its line plus one, so callers waiting for a slot see their place instead of
sitting unseen in Celery's queue, and one process is always free to refuse an ask
past the line at once: with only cap + line, a worker whose processes all hold
runs prefetches the next ask and holds it unseen while another worker is idle,
seen by the cluster test). Logs go to stdout. SIGTERM is Celery's
warm shutdown, bounded: no new job is taken, running monolith runs get
``--stop-grace-s`` (default 20 s) to finish, those still running then are
stopped with a message to their user (shutdown.py), and it exits 0 (a second
SIGTERM, or SIGQUIT, stops at once).

Metrics: the job processes write prometheus_client's multiprocess files in
``PROMETHEUS_MULTIPROC_DIR`` (a private folder unless the operator sets one).
``--metrics-port N`` (``WARMSERVE_DASH_JOBS_METRICS_PORT``; ``--metrics-host``,
default 127.0.0.1) serves them at ``/metrics``: the dashboard's monolith metric
names, for a worker on a host of its own. On one host, give the dashboards and the
worker the same ``PROMETHEUS_MULTIPROC_DIR`` instead: the dashboard's ``/metrics``
then counts the worker's runs too (scrape one of the two, or they count twice).
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
                        help="jobs at once in this worker (default: monolith concurrency + monolith queue + 1)")
    parser.add_argument("--data-dir", type=Path, help="kept uploads and history folder (as the dashboard's)")
    parser.add_argument("--db", dest="db_path", type=Path, help="history database (as the dashboard's)")
    parser.add_argument("--backend", help="ZeroMQ address of the model backend (as the dashboard's)")
    parser.add_argument("--metrics-port", dest="jobs_metrics_port", type=int, metavar="PORT",
                        help="serve the jobs' Prometheus metrics at http://HOST:PORT/metrics (0 = a free port; default off)")
    parser.add_argument("--metrics-host", dest="jobs_metrics_host", help="address of the metrics endpoint (default 127.0.0.1)")
    parser.add_argument("--stop-grace-s", dest="jobs_stop_grace_s", type=float, metavar="S",
                        help="on SIGTERM, seconds running monolith runs may go on before they are stopped (default 20)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def worker_argv(settings: DashboardSettings, concurrency: int | None, log_level: str) -> list[str]:
    """The ``celery worker`` command line this worker runs."""
    processes = concurrency if concurrency is not None else settings.monolith_concurrency + settings.monolith_queue + 1
    if processes < 1:
        raise SettingsError(f"Expected concurrency to be at least 1. Received: concurrency={processes!r}")
    return ["worker", f"--loglevel={log_level}", f"--concurrency={processes}", "--pool=prefork",
            "--without-gossip", "--without-mingle", f"--hostname={WORKER_NAME}"]


def run(settings: DashboardSettings, concurrency: int | None = None, log_level: str = "INFO") -> int:
    """Build the app (registering its jobs), stop its threads, and run the Celery worker until it is stopped."""
    if not settings.redis:
        raise SettingsError("Expected a Redis URL for the jobs worker (--redis or WARMSERVE_DASH_REDIS). Received: none")
    argv = worker_argv(settings, concurrency, log_level)
    from ..metrics.folder import prepare_multiprocess_dir

    prepare_multiprocess_dir()  # before anything imports prometheus_client: the pool processes' runs are counted
    from ..app import create_app, stop_app
    from .shutdown import arm

    app = create_app(settings)
    stop_app(app)  # the worker only needs the registered callbacks, not the poller or the history writer
    arm(settings.jobs_stop_grace_s)  # before Celery forks its pool: the pool processes inherit the flag
    if settings.jobs_metrics_port is not None:
        from ..metrics.registry import serve_metrics

        serve_metrics(settings.jobs_metrics_host, settings.jobs_metrics_port)
    celery_app = app.server.extensions["warmserve"]["jobs"].handle
    jobs = sorted(name for name in celery_app.tasks if name.startswith("background_callback_"))
    log.info("Jobs worker for %d background callback(s): celery %s", len(jobs), " ".join(argv))
    celery_app.worker_main(argv)
    return 0
