"""``python -m dashboard serve``: serve the dashboard with waitress (the Flask dev server only with --debug).

    python -m dashboard serve [--host 127.0.0.1] [--port 8050] [--backend tcp://127.0.0.1:5576]
                              [--db PATH] [--data-dir DIR] [--threads 8] [--debug] [--auth-file FILE]

Every flag has a WARMSERVE_DASH_* environment variable (see dashboard/settings.py);
a flag wins over the environment. Binds to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .settings import SettingsError, settings_from

log = logging.getLogger("dashboard")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dashboard", description="The warmserve dashboard.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the dashboard and its JSON API")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1; 0.0.0.0 exposes it to the network)")
    serve.add_argument("--port", type=int, help="port (default 8050; 0 picks a free one)")
    serve.add_argument("--backend", help="ZeroMQ address of the model backend (default tcp://127.0.0.1:5576)")
    serve.add_argument("--db", dest="db_path", type=Path, help="SQLite history file (default DATA_DIR/history.sqlite3)")
    serve.add_argument("--data-dir", type=Path, help="history, kept uploads and job cache (default ./data in the repo)")
    serve.add_argument("--threads", type=int, help="waitress worker threads (default 8)")
    serve.add_argument("--debug", action="store_true", default=None, help="Flask dev server with Dash dev tools")
    serve.add_argument("--auth-file", help="turn on basic auth with name:password lines from this file")
    serve.add_argument("--max-upload-mb", type=float, help="largest image accepted (default 10)")
    serve.add_argument("--timeout-ms", type=int, help="backend reply timeout per attempt (default 5000)")
    serve.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def serve(settings) -> None:
    from .app import create_app

    app = create_app(settings)
    if settings.debug:
        log.warning("Debug mode: Flask's development server with dev tools; do not expose it.")
        log.info("Dashboard ready at http://%s:%s/", settings.host, settings.port)
        app.run(host=settings.host, port=settings.port, debug=True)
        return
    from waitress import create_server

    server = create_server(app.server, host=settings.host, port=settings.port, threads=settings.threads,
                           ident="warmserve-dashboard")
    log.info("Backend %s, history %s, auth %s, %d threads", settings.backend, settings.db_path,
             "on" if settings.auth_enabled else "off", settings.threads)
    log.info("Dashboard ready at http://%s:%s/", settings.host, server.effective_port)
    try:
        server.run()
    except KeyboardInterrupt:
        log.info("Stopping")
    finally:
        server.close()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    flags = {k: v for k, v in vars(args).items() if k not in ("command", "log_level")}
    try:
        settings = settings_from(flags)
    except SettingsError as error:
        parser.error(str(error))
    serve(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
