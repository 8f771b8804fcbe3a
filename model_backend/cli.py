"""Command line: ``python -m model_backend serve | classify | ping | info | broker | keys``.

``serve`` loads the model once, warms it up, binds and serves until SIGINT or
SIGTERM. ``classify IMAGE...`` sends images to a running backend and prints
the top-5 and the round-trip time of each (the ZeroMQ counterpart of timing
the monolith from the shell). Settings come from flags, then ``WARMSERVE_*``
environment variables, then defaults (see settings.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from . import keys_command, protocol, security
from . import settings as settings_module
from .errors import BackendError
from .settings import (BrokerSettings, ClientSettings, ServerSettings, SettingsError, add_model_arguments, build_settings,
                       model_settings_from)

log = logging.getLogger("model_backend")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m model_backend", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="load the model once and serve it over ZeroMQ")
    add_model_arguments(serve)
    serve.add_argument("--bind", help=f"ROUTER endpoint to bind (default {settings_module.DEFAULT_ADDRESS}; port * picks a free one)")
    serve.add_argument("--connect", help="run as a worker: connect to a broker's worker endpoint instead of binding; a comma-separated list serves several brokers")
    serve.add_argument("--heartbeat-ms", type=int, help="worker heartbeat interval to the broker (default 1000)")
    serve.add_argument("--max-batch", type=int, help="largest batch for one forward pass (default 16)")
    serve.add_argument("--max-wait-ms", type=float, help="longest wait for a batch to fill while requests are decoding (default 2)")
    serve.add_argument("--queue-size", type=int, help="requests in flight before answering 'overloaded' (default 256)")
    serve.add_argument("--max-image-mb", type=float, help="largest accepted image in MiB (default 20)")
    serve.add_argument("--max-pixels", type=int, help="largest accepted image in pixels (default 64e6)")
    serve.add_argument("--decode-threads", type=int, help="threads decoding images off the I/O loop (default 2)")
    serve.add_argument("--metrics-port", type=int, help="serve Prometheus metrics at http://HOST:PORT/metrics (0 = a free port; default off)")
    serve.add_argument("--metrics-host", help="address of the metrics endpoint (default 127.0.0.1)")
    serve.add_argument("--execution", choices=settings_module.EXECUTIONS,
                       help="LiteRT forward passes: auto (default: pool, or adaptive when a start-up trial finds the wide interpreter "
                            "faster alone), wide (one interpreter on all cores, batched), pool (one single-thread interpreter "
                            "per core) or adaptive (wide for a lone request, the pool under load)")
    serve.add_argument("--pool-batch", type=int, help="pool / adaptive: the most waiting requests one single-thread interpreter "
                                                      "runs as one batch (default 2; 1 = one at a time)")
    serve.add_argument("--intra-op-threads", type=int, help="TensorFlow intra-op threads, or LiteRT's num_threads (0 = all cores)")
    serve.add_argument("--inter-op-threads", type=int, help="TensorFlow inter-op threads (default 1)")
    serve.add_argument("--log-level", help="DEBUG, INFO (default), WARNING or ERROR")
    security.add_arguments(serve)
    serve.set_defaults(handler=run_serve)

    classify = commands.add_parser("classify", help="classify images with a running backend, printing top-5 and round-trip time")
    classify.add_argument("images", nargs="+", type=Path)
    classify.add_argument("--top-k", type=int, default=5)
    classify.add_argument("--json", action="store_true", help="print one JSON reply per line")
    add_client_arguments(classify)
    classify.set_defaults(handler=run_classify)

    broker = commands.add_parser("broker", help="several workers behind one address (scale-out)",
                                 description="Several backend workers behind one address (WARMSERVE_BROKER_* variables).")
    broker.add_argument("--frontend", help=f"address clients connect to (default {settings_module.DEFAULT_ADDRESS})")
    broker.add_argument("--backend", help=f"address workers connect to (default {settings_module.DEFAULT_BROKER_BACKEND})")
    broker.add_argument("--queue-size", type=int, help="requests waiting for a worker before answering 'overloaded' (default 1024)")
    broker.add_argument("--heartbeat-ms", type=int, help="heartbeat interval to and from workers (default 1000)")
    broker.add_argument("--liveness", type=int, help="missed heartbeats before a worker is dropped (default 3)")
    broker.add_argument("--max-frame-mb", type=float, help="largest frame a client may send, in MiB (default 25: a 20 MiB image plus a quarter); larger ones cut the client off")
    broker.add_argument("--log-level", default="INFO")
    security.add_arguments(broker)  # --keys-dir, --insecure (else WARMSERVE_KEYS_DIR / WARMSERVE_INSECURE)
    broker.set_defaults(handler=run_broker)

    keys_command.add_parser(commands)

    for name, helptext in (("ping", "is a backend up and ready?"), ("info", "what is the backend serving?")):
        sub = commands.add_parser(name, help=helptext)
        add_client_arguments(sub)
        sub.add_argument("--wait", type=float, default=0.0, help="keep trying for this many seconds")
        sub.set_defaults(handler=run_query, op=name)
    return parser


def add_client_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--address", help=f"backend or broker endpoint (default {settings_module.DEFAULT_ADDRESS}); a comma-separated list fails over in order")
    parser.add_argument("--timeout-ms", type=int, help="reply timeout per attempt (default 5000)")
    parser.add_argument("--retries", type=int, help="attempts after a timeout (default 1)")
    security.add_arguments(parser)


def server_settings_from(args: argparse.Namespace) -> ServerSettings:
    """``serve``'s settings: flags, else WARMSERVE_* variables, else defaults (settings.build_settings)."""
    return build_settings(ServerSettings, args, model=model_settings_from(args))


def client_settings_from(args: argparse.Namespace) -> ClientSettings:
    """``classify`` / ``ping`` / ``info``'s settings: flags, else WARMSERVE_* variables, else defaults."""
    return build_settings(ClientSettings, args)


def configure_logging(level: str) -> None:
    """Logging of the long-running roles (``serve``, ``broker``): one line per event on stdout, where
    containers and process managers collect a service's log (the one-shot commands keep stdout for their
    output and warn on stderr)."""
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout)


# -- serve ----------------------------------------------------------------------


def run_serve(args: argparse.Namespace) -> int:
    settings = server_settings_from(args)
    configure_logging(settings.log_level)
    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        log.info("Received %s, shutting down", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    from .service import start_service  # imports TensorFlow

    try:
        service = start_service(settings, stop)
    except BackendError as exc:
        log.error("%s", exc.message)
        return 1
    if service is None:  # stopped during start-up: exit now, not after the loader thread (deep in TensorFlow)
        logging.shutdown()
        sys.stdout.flush()
        os._exit(0)
    service.serve(stop)
    return 0


def run_broker(args: argparse.Namespace) -> int:
    settings = build_settings(BrokerSettings, args)
    configure_logging(args.log_level)
    from .broker import run_broker as serve_broker

    return serve_broker(settings)


# -- classify / ping / info -------------------------------------------------------


def quiet_broken_pipe() -> None:
    """Short-lived commands end quietly when piped into `head`."""
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)


def run_classify(args: argparse.Namespace) -> int:
    from .client import BackendClient

    quiet_broken_pipe()
    failures = 0
    with BackendClient(client_settings_from(args)) as client:
        for path in args.images:
            try:
                data = path.read_bytes()
            except OSError as exc:
                print(f"{path}: cannot read: {exc.strerror}", file=sys.stderr)
                failures += 1
                continue
            try:
                reply = client.classify(data, top_k=args.top_k)
                line = json.dumps({"image": str(path), **reply}) if args.json else format_classification(path, reply)
            except BackendError as exc:  # BadReply too: a reply that is not a classify reply
                print(f"{path}: {exc.code}: {exc.message}", file=sys.stderr)
                failures += 1
                if exc.code in ("unavailable", "timeout"):
                    break
                continue
            print(line)
    return 1 if failures else 0


def format_classification(path: Path, reply: dict | protocol.ClassifyReply) -> str:
    """Top-k and timings of one classify reply, as the terminal shows them (stages in protocol.STAGES order)."""
    answer = reply if isinstance(reply, protocol.ClassifyReply) else protocol.ClassifyReply.from_wire(reply)
    timings = answer.timings_ms.to_wire()
    stages = ", ".join(f"{name} {timings[name]:.1f}" for name in protocol.STAGES if name != "total")
    roundtrip = f"  round trip {answer.roundtrip_ms:.1f} ms" if answer.roundtrip_ms is not None else ""
    lines = [f"{path}{roundtrip}  (backend {answer.timings_ms.total:.1f} ms: {stages}; batch {answer.batch_size}; {answer.model})"]
    for rank, prediction in enumerate(answer.predictions, start=1):
        lines.append(f"  {rank}. {prediction.p:7.2%}  {prediction.label}  [{prediction.index}]")
    return "\n".join(lines)


def run_query(args: argparse.Namespace) -> int:
    from .client import BackendClient

    quiet_broken_pipe()
    deadline = time.monotonic() + args.wait
    with BackendClient(client_settings_from(args)) as client:
        while True:
            try:
                reply = client.ping() if args.op == "ping" else client.info()
            except BackendError as exc:
                if time.monotonic() < deadline:
                    time.sleep(0.2)
                    continue
                print(f"{exc.code}: {exc.message}", file=sys.stderr)
                return 1
            ready = bool(reply.get("ready", True))
            if not ready and time.monotonic() < deadline:  # e.g. a broker whose workers are still loading
                time.sleep(0.2)
                continue
            print(json.dumps(reply, indent=None if args.op == "ping" else 2))
            return 0 if ready else 1
