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

from . import keys_command, security
from . import settings as settings_module
from .errors import BackendError
from .settings import ClientSettings, ModelSettings, ServerSettings, SettingsError

log = logging.getLogger("model_backend")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "broker":
        from .broker import main as broker_main

        return broker_main(argv[1:])
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
    serve.add_argument("--connect", help="run as a worker: connect to a broker's worker endpoint instead of binding")
    serve.add_argument("--heartbeat-ms", type=int, help="worker heartbeat interval to the broker (default 1000)")
    serve.add_argument("--max-batch", type=int, help="largest batch for one forward pass (default 16)")
    serve.add_argument("--max-wait-ms", type=float, help="longest wait for a batch to fill while requests are decoding (default 2)")
    serve.add_argument("--queue-size", type=int, help="requests in flight before answering 'overloaded' (default 256)")
    serve.add_argument("--max-image-mb", type=float, help="largest accepted image in MiB (default 20)")
    serve.add_argument("--max-pixels", type=int, help="largest accepted image in pixels (default 64e6)")
    serve.add_argument("--decode-threads", type=int, help="threads decoding images off the I/O loop (default 2)")
    serve.add_argument("--intra-op-threads", type=int, help="TensorFlow intra-op threads (0 = all cores)")
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

    commands.add_parser("broker", help="several workers behind one address (see `broker --help`)", add_help=False)
    keys_command.add_parser(commands)

    for name, helptext in (("ping", "is a backend up and ready?"), ("info", "what is the backend serving?")):
        sub = commands.add_parser(name, help=helptext)
        add_client_arguments(sub)
        sub.add_argument("--wait", type=float, default=0.0, help="keep trying for this many seconds")
        sub.set_defaults(handler=run_query, op=name)
    return parser


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="efficientnet-lite0 (default), resnet50, or a path to a .keras file")
    parser.add_argument("--weights", help="resnet50: a local ImageNet weights .h5, or 'random' (timing only)")
    parser.add_argument("--labels", type=Path, help="class names for a .keras model, one a line")
    parser.add_argument("--preprocess", choices=("raw", "unit", "tf", "caffe", "torch"), help="preprocessing for a .keras model (default raw 0..255)")
    parser.add_argument("--cache-dir", type=Path, help="where converted weights are cached")


def add_client_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--address", help=f"backend or broker endpoint (default {settings_module.DEFAULT_ADDRESS})")
    parser.add_argument("--timeout-ms", type=int, help="reply timeout per attempt (default 5000)")
    parser.add_argument("--retries", type=int, help="attempts after a timeout (default 1)")
    security.add_arguments(parser)


def model_settings_from(args: argparse.Namespace) -> ModelSettings:
    """Model flags, else WARMSERVE_MODEL / _WEIGHTS / _LABELS / _PREPROCESS / _CACHE_DIR, else defaults."""
    prefix = settings_module.ENV_PREFIX
    chosen = {
        "name": (getattr(args, "model", None), "MODEL"),
        "weights": (getattr(args, "weights", None), "WEIGHTS"),
        "labels": (getattr(args, "labels", None), "LABELS"),
        "preprocess": (getattr(args, "preprocess", None), "PREPROCESS"),
        "cache_dir": (getattr(args, "cache_dir", None), "CACHE_DIR"),
    }
    values: dict = {}
    for field_name, (flag_value, env_name) in chosen.items():
        value = flag_value if flag_value is not None else os.environ.get(prefix + env_name)
        if value is not None:
            values[field_name] = Path(value).expanduser() if field_name in ("labels", "cache_dir") else value
    return ModelSettings(**values)


def server_settings_from(args: argparse.Namespace) -> ServerSettings:
    values = settings_module.env_overrides(ServerSettings)
    flags = {
        "bind": args.bind,
        "connect": args.connect,
        "max_batch": args.max_batch,
        "max_wait_ms": args.max_wait_ms,
        "queue_size": args.queue_size,
        "max_image_bytes": int(args.max_image_mb * 1024 * 1024) if args.max_image_mb is not None else None,
        "max_pixels": args.max_pixels,
        "decode_threads": args.decode_threads,
        "intra_op_threads": args.intra_op_threads,
        "inter_op_threads": args.inter_op_threads,
        "log_level": args.log_level,
        "heartbeat_ms": args.heartbeat_ms,
        "keys_dir": args.keys_dir,
        "insecure": args.insecure,
    }
    values.update({key: value for key, value in flags.items() if value is not None})
    return ServerSettings(model=model_settings_from(args), **values)


def client_settings_from(args: argparse.Namespace) -> ClientSettings:
    values = settings_module.env_overrides(ClientSettings)
    flags = {"address": args.address, "timeout_ms": args.timeout_ms, "retries": args.retries,
             "keys_dir": args.keys_dir, "insecure": args.insecure}
    values.update({key: value for key, value in flags.items() if value is not None})
    return ClientSettings(**values)


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


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
            except BackendError as exc:
                print(f"{path}: {exc.code}: {exc.message}", file=sys.stderr)
                failures += 1
                if exc.code in ("unavailable", "timeout"):
                    break
                continue
            if args.json:
                print(json.dumps({"image": str(path), **reply}))
            else:
                print(format_classification(path, reply))
    return 1 if failures else 0


def format_classification(path: Path, reply: dict) -> str:
    timings = reply["timings_ms"]
    lines = [
        f"{path}  round trip {reply['roundtrip_ms']:.1f} ms  (backend {timings['total']:.1f} ms: "
        f"queue {timings['queue']:.1f}, decode {timings['decode']:.1f}, preprocess {timings['preprocess']:.1f}, "
        f"inference {timings['inference']:.1f}; batch {reply['batch_size']}; {reply['model']})"
    ]
    for rank, prediction in enumerate(reply["predictions"], start=1):
        lines.append(f"  {rank}. {prediction['p']:7.2%}  {prediction['label']}  [{prediction['index']}]")
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
