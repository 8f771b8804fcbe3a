"""``python -m dashboard serve | users add | monolith``: the dashboard's command line.

``serve`` serves the dashboard with waitress (the Flask dev server only with --debug):

    python -m dashboard serve [--host 127.0.0.1] [--port 8050] [--backend tcp://127.0.0.1:5576]
                              [--db PATH] [--data-dir DIR] [--threads 8] [--debug] [--auth-file FILE]

Every flag has a WARMSERVE_DASH_* environment variable (see dashboard/settings.py);
a flag wins over the environment. Binds to 127.0.0.1 unless told otherwise.
SIGTERM (or Ctrl-C) stops it within 2 s, ending any background job it started.

    python -m dashboard users add FILE NAME --role admin|viewer [--password-stdin] [--replace]

writes a hashed entry (werkzeug's scrypt format) to the users file FILE for
--auth-file, creating it with mode 0600; the password comes from a prompt, or
from the first line of stdin with --password-stdin.

    python -m dashboard monolith IMAGE [--model M] [--db PATH | --data-dir DIR]

runs the monolith once on IMAGE, records it in the history and prints its
JSON (see dashboard/monolith/command.py).

    python -m dashboard jobs-worker --redis redis://redis:6379/0 [--concurrency N]

runs the Celery worker for the background jobs of dashboards started with
--redis (see dashboard/jobs/worker.py).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from model_backend import security

from .jobs import worker as jobs_worker
from .monolith import command as monolith_command
from .settings import SettingsError, settings_from

#: the commands that run until stopped: their log goes to stdout (the one-shot ones log to stderr)
LONG_RUNNING = ("serve", "jobs-worker")

log = logging.getLogger("dashboard")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dashboard", description="The warmserve dashboard.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the dashboard and its JSON API")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1; 0.0.0.0 exposes it to the network)")
    serve.add_argument("--port", type=int, help="port (default 8050; 0 picks a free one)")
    serve.add_argument("--backend", help="ZeroMQ address of the model backend or broker; a comma-separated list fails over (default tcp://127.0.0.1:5576)")
    serve.add_argument("--db", dest="db_path", help="history database: a SQLite file (default DATA_DIR/history.sqlite3) "
                       "or a URL, e.g. postgresql://USER:PASSWORD@HOST:5432/DBNAME")
    serve.add_argument("--data-dir", type=Path, help="history, kept uploads and job cache (default ./data in the repo)")
    serve.add_argument("--threads", type=int, help="waitress worker threads (default 8)")
    serve.add_argument("--debug", action="store_true", default=None, help="Flask dev server with Dash dev tools")
    serve.add_argument("--auth-file", help="turn on basic auth with name:password lines from this file")
    serve.add_argument("--max-upload-mb", type=float, help="largest image accepted (default 10)")
    serve.add_argument("--unsure-below", type=float, metavar="P",
                       help="mark results whose top-1 probability is below P as unsure (default 0.30; 0 = never)")
    serve.add_argument("--session-results", type=int, metavar="N",
                       help="results a browser tab keeps through reloads (default 50)")
    serve.add_argument("--timeout-ms", type=int, help="backend reply timeout per attempt (default 5000)")
    serve.add_argument("--allowed-hosts", help="Host header names served, comma separated ('*' = any; default: "
                                               "loopback names plus what --host implies)")
    serve.add_argument("--anonymous-role", choices=["admin", "viewer"],
                       help="role of everyone when auth is off (default: admin on loopback, viewer otherwise)")
    serve.add_argument("--callback-max-mb", type=float,
                       help="body limit of Dash's callback route (default: max files x max upload x 4/3 + 1 MB)")
    serve.add_argument("--connection-limit", type=int, help="most open HTTP connections (default 1000)")
    serve.add_argument("--channel-timeout-s", type=int, help="close connections idle this long (default 30)")
    serve.add_argument("--cleanup-interval-s", type=int, help="how often idle connections are looked for (default 5)")
    serve.add_argument("--redis", help="Redis URL: background jobs on Celery (run `jobs-worker` too) and the monolith cap "
                                       "shared by every replica (default: none, one host)")
    security.add_arguments(serve)  # --keys-dir, --insecure: CURVE to a backend beyond loopback
    serve.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    users = commands.add_parser("users", help="manage the users file (hashed passwords and roles)")
    users_commands = users.add_subparsers(dest="users_command", required=True)
    add = users_commands.add_parser("add", help="add a user with a hashed password")
    add.add_argument("file", type=Path, help="the users file (created with mode 0600)")
    add.add_argument("name", help="user name (no ':')")
    add.add_argument("--role", choices=["admin", "viewer"], default="viewer", help="admin may clear the history")
    add.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    add.add_argument("--replace", action="store_true", help="replace an existing user of that name")
    monolith_command.add_parser(commands)
    jobs_worker.add_parser(commands)
    return parser


def users_command(args, parser: argparse.ArgumentParser) -> int:
    """``users add``: prompt for (or read) a password and write the hashed entry."""
    import getpass

    from .users import UsersError, add_user

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"Password for {args.name}: ")
        if getpass.getpass("Again: ") != password:
            parser.error("Expected the same password twice. Received: two different passwords")
    try:
        user = add_user(args.file, args.name, password, args.role, replace=args.replace)
    except UsersError as error:
        parser.error(str(error))
    print(f"Wrote {user.name} ({user.role}) to {args.file}")
    return 0


def serve(settings) -> None:
    from .metrics.folder import prepare_multiprocess_dir

    prepare_multiprocess_dir()  # before anything imports prometheus_client: /metrics then sums every process
    from .app import create_app

    app = create_app(settings)
    if settings.debug:
        log.warning("Debug mode: Flask's development server with dev tools; do not expose it.")
        log.info("Dashboard ready at http://%s:%s/", settings.host, settings.port)
        app.run(host=settings.host, port=settings.port, debug=True)
        return
    from .api.routes import request_limit
    from .app import stop_app
    from .history.engine import printable_location
    from .metrics.registry import gather_classify_metrics
    from .web.server import Stopper, end_children, make_server

    gather_classify_metrics()  # request threads queue their metrics, written in batches (metrics/tally.py)
    stopper = Stopper()
    stopper.install()
    server = make_server(app.server, settings, request_limit(settings), app.server.extensions["warmserve"]["guard"])
    log.info("Backend %s, history %s, auth %s, %d threads, at most %d connections", settings.backend,
             printable_location(settings.db_path), "on" if settings.auth_enabled else "off", settings.threads, settings.connection_limit)
    log.info("Dashboard ready at http://%s:%s/", settings.host, server.effective_port)
    try:
        server.run()  # returns after a stop signal (waitress catches the SystemExit the handler raises)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.close()
        stop_app(app)
        ended = end_children()
        log.info("Stopped%s", f" ({ended} child process(es) ended)" if ended else "")
        if stopper.signalled.is_set():
            stopper.exit_now()  # a request thread may still wait on the backend; do not let it hold the exit


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "users":
        return users_command(args, parser)
    # the long-running roles (serve, jobs-worker) log to stdout, as containers expect; one-shot commands
    # (monolith, users) keep stdout for their output and log to stderr
    logging.basicConfig(level=getattr(args, "log_level", "WARNING"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stdout if args.command in LONG_RUNNING else sys.stderr)
    flags = {k: v for k, v in vars(args).items() if k not in ("command", "log_level", "image", "concurrency")}
    try:
        settings = settings_from(flags)
    except SettingsError as error:
        parser.error(str(error))
    if args.command == "monolith":
        return monolith_command.run(settings, args.image)
    if args.command == "jobs-worker":
        try:
            return jobs_worker.run(settings, args.concurrency, args.log_level)
        except SettingsError as error:
            parser.error(str(error))
    serve(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
