"""A worker process serving the stand-in model behind a broker (for broker tests that kill workers).

    python -m tests.standin_worker --connect tcp://127.0.0.1:PORT [--delay 0.02]
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from model_backend.server import BackendServer
from model_backend.settings import ServerSettings
from tests.standin import StandInClassifier


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connect", required=True)
    parser.add_argument("--delay", type=float, default=0.02)
    parser.add_argument("--heartbeat-ms", type=int, default=200)
    args = parser.parse_args()
    logging.basicConfig(level="INFO", stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = ServerSettings(connect=args.connect, max_batch=4, heartbeat_ms=args.heartbeat_ms)
    server = BackendServer(settings, StandInClassifier(delay_s=args.delay))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server.open()
    logging.getLogger("standin_worker").info("Worker ready on %s", args.connect)
    server.serve(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
