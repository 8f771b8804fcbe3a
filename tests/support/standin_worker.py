"""A backend process serving the stand-in model: a worker behind a broker, or a standalone server.

    python -m tests.support.standin_worker --connect tcp://127.0.0.1:PORT [--delay 0.02]   # a worker (broker tests)
    python -m tests.support.standin_worker --bind tcp://127.0.0.1:*      [--delay 0.02]   # standalone; logs "Backend ready on ADDR"

For tests that need a real process (signals, SIGKILL, RSS) without TensorFlow.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from model_backend.server import BackendServer
from model_backend.service import READY_MESSAGE
from model_backend.settings import ServerSettings
from tests.support.standin import StandInClassifier


def main() -> int:
    parser = argparse.ArgumentParser()
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--connect")
    where.add_argument("--bind")
    parser.add_argument("--delay", type=float, default=0.02)
    parser.add_argument("--heartbeat-ms", type=int, default=200)
    parser.add_argument("--max-batch", type=int, default=4)
    parser.add_argument("--queue-size", type=int, default=256)
    parser.add_argument("--max-image-bytes", type=int, default=20 * 1024 * 1024)
    args = parser.parse_args()
    logging.basicConfig(level="INFO", stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    place = {"connect": args.connect} if args.connect else {"bind": args.bind}
    settings = ServerSettings(
        **place, max_batch=args.max_batch, heartbeat_ms=args.heartbeat_ms, queue_size=args.queue_size, max_image_bytes=args.max_image_bytes,
    )
    server = BackendServer(settings, StandInClassifier(delay_s=args.delay))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    endpoint = server.open()
    logging.getLogger("standin_worker").info("%s %s", READY_MESSAGE if args.bind else "Worker ready on", endpoint)
    server.serve(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
