"""The load-and-fault run: what a user loses when the backend is hammered, killed and fed the worst image it accepts.

    python -m tools.fault_run [--requests 2000] [--clients 32] [--kill-clients 32] [--model NAME] [--runtime R] [--json PATH]
    ./run.sh faults [same flags]

Three phases against a real backend process (the default offline model unless
``--model`` says otherwise), each printed as it ends and written as one JSON
object with ``--json``:

1. **Load.** ``--requests`` requests from ``--clients`` threads, each with a
   BackendClient of its own, cycling through the example photos. A request is
   *answered* (a reply), *failed* (a typed error, counted by code), *lost* (the
   caller got neither: a hang or an exception that is not a typed error), or
   *mismatched* (its top-1 class is not the one the same photo got alone, before
   the load).
2. **SIGKILL.** ``--kill-clients`` callers keep sending; the backend is killed
   with SIGKILL mid-load. The figure is the time from the kill until every
   caller has an answer (its typed error), which the client's timeout and
   retries bound. Then the backend is restarted on the same address, and the
   time until every caller is answered successfully again is measured, with no
   caller restarted.
3. **Memory.** Resident memory of an idle backend, then its peak while decoding
   the worst images it accepts (a 16-bit PNG and an RGBA PNG just under the pixel
   limit, a progressive 4:4:4 JPEG and a WebP at their own lower limits; six of
   each at once), as ratios of idle RSS, and what is left once they are answered.

Nothing is written into the checkout unless ``--json`` points there; process
logs go to a temporary folder that is printed.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import signal
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from model_backend.client import BackendClient
from model_backend.errors import BackendError
from model_backend.settings import ClientSettings
from tools import processes
from tools.processes import BACKEND_READY, Child, backend_args

log = logging.getLogger("tools.fault_run")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "assets" / "examples"
CLIENT_TIMEOUT_MS = 5000
CLIENT_RETRIES = 1
KILL_AFTER_S = 2.0
RSS_SAMPLE_S = 0.005


def free_address() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{sock.getsockname()[1]}"


def client_settings(address: str) -> ClientSettings:
    return ClientSettings(address=address, timeout_ms=CLIENT_TIMEOUT_MS, retries=CLIENT_RETRIES)


def example_photos() -> list[tuple[str, bytes]]:
    return [(path.name, path.read_bytes()) for path in sorted(EXAMPLES.glob("*.jpg"))]


# -- 1. load -----------------------------------------------------------------------------------------


def reference_top1(address: str, photos: list[tuple[str, bytes]]) -> dict[str, int]:
    """Each photo's top-1 class index when it is sent alone."""
    with BackendClient(client_settings(address)) as client:
        return {name: client.classify(data)["predictions"][0]["index"] for name, data in photos}


def load_phase(address: str, photos: list[tuple[str, bytes]], requests: int, clients: int) -> dict:
    expected = reference_top1(address, photos)
    lock = threading.Lock()
    counts: Counter = Counter()
    errors: Counter = Counter()
    next_request = iter(range(requests))

    def caller() -> None:
        with BackendClient(client_settings(address)) as client:
            while True:
                with lock:
                    number = next(next_request, None)
                if number is None:
                    return
                name, data = photos[number % len(photos)]
                try:
                    reply = client.classify(data)
                except BackendError as exc:
                    with lock:
                        counts["failed"] += 1
                        errors[exc.code] += 1
                    continue
                except Exception:  # noqa: BLE001 - anything but a typed error is a lost request
                    log.exception("A request was lost")
                    with lock:
                        counts["lost"] += 1
                    continue
                top1 = reply["predictions"][0]["index"]
                with lock:
                    counts["answered"] += 1
                    counts["mismatched"] += int(top1 != expected[name])

    started = time.perf_counter()
    threads = [threading.Thread(target=caller, name=f"load-{i}", daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall_s = time.perf_counter() - started
    sent = requests
    result = {
        "requests": sent, "clients": clients, "answered": counts["answered"], "failed": counts["failed"],
        "errors_by_code": dict(errors), "lost": sent - counts["answered"] - counts["failed"],
        "mismatched": counts["mismatched"], "wall_s": round(wall_s, 2), "images_per_s": round(counts["answered"] / wall_s, 1),
    }
    log.info("Load: %s", result)
    return result


# -- 2. SIGKILL mid-load and restart --------------------------------------------------------------------


@dataclass
class Caller:
    """One thread's view of the kill: when it last got an answer of each kind."""

    answers: list[tuple[float, bool, str]] = field(default_factory=list)  # (time, ok, error code)
    stuck: bool = False


def kill_phase(address: str, photos: list[tuple[str, bytes]], clients: int, model_args: list[str], log_dir: Path) -> dict:
    stop = threading.Event()
    callers = [Caller() for _ in range(clients)]

    def call_loop(state: Caller, index: int) -> None:
        with BackendClient(client_settings(address)) as client:
            number = index
            while not stop.is_set():
                name, data = photos[number % len(photos)]
                number += 1
                try:
                    client.classify(data)
                    state.answers.append((time.monotonic(), True, ""))
                except BackendError as exc:
                    state.answers.append((time.monotonic(), False, exc.code))
                    time.sleep(0.05)
                except Exception:  # noqa: BLE001
                    log.exception("A caller got something other than a reply or a typed error")
                    state.stuck = True
                    return

    threads = [threading.Thread(target=call_loop, args=(state, i), daemon=True) for i, state in enumerate(callers)]
    with processes.running("backend-killed", backend_args(model_args, "--bind", address), log_dir, processes.tool_env()) as backend:
        backend.wait_for(BACKEND_READY)
        for thread in threads:
            thread.start()
        time.sleep(KILL_AFTER_S)
        killed_at = time.monotonic()
        backend.process.send_signal(signal.SIGKILL)
        backend.process.wait()
    # Every caller must get an answer (a typed error) after the kill, within its timeout and retries.
    bound_s = (CLIENT_TIMEOUT_MS * (CLIENT_RETRIES + 1)) / 1000.0 + 5.0
    deadline = killed_at + bound_s
    while time.monotonic() < deadline and not all(any(t >= killed_at for t, _, _ in c.answers) for c in callers):
        time.sleep(0.01)
    first_after = [min((t for t, _, _ in c.answers if t >= killed_at), default=None) for c in callers]
    unanswered = sum(1 for t in first_after if t is None)
    all_answered_s = max((t - killed_at for t in first_after if t is not None), default=None)
    codes = Counter(code for c in callers for t, ok, code in c.answers if t >= killed_at and not ok)

    with processes.running("backend-restarted", backend_args(model_args, "--bind", address), log_dir, processes.tool_env()) as restarted:
        restarted.wait_for(BACKEND_READY)
        ready_at = time.monotonic()
        deadline = ready_at + 60
        recovered = lambda c: any(ok and t >= ready_at for t, ok, _ in c.answers)  # noqa: E731
        while time.monotonic() < deadline and not all(recovered(c) for c in callers):
            time.sleep(0.01)
        first_ok = [min((t for t, ok, _ in c.answers if ok and t >= ready_at), default=None) for c in callers]
        stop.set()
        for thread in threads:
            thread.join(bound_s)
    result = {
        "clients": clients, "client_timeout_ms": CLIENT_TIMEOUT_MS, "client_retries": CLIENT_RETRIES,
        "answered_before_kill": sum(1 for c in callers for t, ok, _ in c.answers if ok and t < killed_at),
        "seconds_until_every_caller_answered": None if all_answered_s is None else round(all_answered_s, 2),
        "callers_unanswered": unanswered, "callers_stuck": sum(c.stuck for c in callers),
        "errors_after_kill": dict(codes),
        "seconds_from_restart_ready_until_every_caller_served": (
            round(max(t - ready_at for t in first_ok), 2) if all(t is not None for t in first_ok) else None),
        "callers_not_recovered": sum(1 for t in first_ok if t is None),
    }
    log.info("Kill: %s", result)
    return result


# -- 3. memory for the worst accepted images ----------------------------------------------------------------


def worst_images(max_pixels: int) -> dict[str, bytes]:
    """The costliest images the backend accepts: each format and mode at the largest size its memory bound allows.

    A 16-bit greyscale PNG and an RGBA PNG just under the pixel limit, and the two
    decoders that need more memory per pixel at their own (lower) limits: a
    progressive 4:4:4 JPEG (7 bytes per pixel of DCT coefficients) and a WebP.
    """
    import numpy as np
    from PIL import Image

    from model_backend.imaging import MEMORY_BYTES_PER_PIXEL, WEBP_BYTES_PER_PIXEL

    def side(bytes_per_pixel: float) -> int:
        return int((max_pixels * min(1.0, MEMORY_BYTES_PER_PIXEL / bytes_per_pixel)) ** 0.5) - 1

    def encode(image: Image.Image, **options) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, **options)
        return buffer.getvalue()

    images: dict[str, bytes] = {}
    n = side(MEMORY_BYTES_PER_PIXEL)
    gradient = np.linspace(0, 65535, n, dtype=np.uint16)[np.newaxis, :].repeat(n, axis=0)
    images[f"png-16bit-{n}x{n}"] = encode(Image.fromarray(gradient), format="PNG")
    del gradient
    images[f"png-rgba-{n}x{n}"] = encode(Image.new("RGBA", (n, n), (200, 40, 90, 128)), format="PNG")
    n = side(7)
    images[f"jpeg-progressive-444-{n}x{n}"] = encode(Image.new("RGB", (n, n), (200, 40, 90)), format="JPEG",
                                                      quality=90, subsampling=0, progressive=True)
    n = side(WEBP_BYTES_PER_PIXEL)
    images[f"webp-{n}x{n}"] = encode(Image.new("RGB", (n, n), (200, 40, 90)), format="WEBP", quality=80)
    return images


def rss_bytes(pid: int) -> int:
    import psutil

    return psutil.Process(pid).memory_info().rss


def memory_phase(address: str, backend: Child, concurrent: int = 6) -> dict:
    with BackendClient(ClientSettings(address=address, timeout_ms=120_000, retries=0)) as client:
        max_pixels = int(client.info().get("max_pixels") or 64_000_000)
        time.sleep(1.0)
        idle = rss_bytes(backend.pid)
        results = {"idle_rss_mb": round(idle / 2**20, 1), "max_pixels": max_pixels, "images": {}}
        for name, data in worst_images(max_pixels).items():
            peak = [rss_bytes(backend.pid)]
            done = threading.Event()

            def sample() -> None:
                while not done.is_set():
                    peak[0] = max(peak[0], rss_bytes(backend.pid))
                    time.sleep(RSS_SAMPLE_S)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            outcomes: Counter = Counter()
            started = time.perf_counter()

            def send() -> None:
                try:
                    client.classify(data)
                    outcomes["accepted"] += 1
                except BackendError as exc:
                    outcomes[exc.code] += 1

            senders = [threading.Thread(target=send) for _ in range(concurrent)]
            for thread in senders:
                thread.start()
            for thread in senders:
                thread.join()
            elapsed = time.perf_counter() - started
            time.sleep(1.0)
            done.set()
            sampler.join()
            after = rss_bytes(backend.pid)
            results["images"][name] = {
                "bytes": len(data), "sent_at_once": concurrent, "outcomes": dict(outcomes), "seconds": round(elapsed, 2),
                "peak_rss_mb": round(peak[0] / 2**20, 1), "peak_over_idle": round(peak[0] / idle, 2),
                "after_rss_mb": round(after / 2**20, 1), "after_over_idle": round(after / idle, 2),
            }
            log.info("Memory %s: %s", name, results["images"][name])
    worst = max(results["images"].values(), key=lambda r: r["peak_over_idle"])
    results["worst_peak_over_idle"] = worst["peak_over_idle"]
    return results


# -- the run ----------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict:
    log_dir = Path(tempfile.mkdtemp(prefix="warmserve-faults-"))
    log.info("Process logs in %s", log_dir)
    address = free_address()
    model_args = (["--model", args.model] if args.model else []) + (["--runtime", args.runtime] if args.runtime else [])
    photos = example_photos()

    results: dict = {"address": address, "photos": [name for name, _ in photos]}
    with processes.running("backend", backend_args(model_args, "--bind", address), log_dir, processes.tool_env()) as backend:
        backend.wait_for(BACKEND_READY)
        results["memory"] = memory_phase(address, backend)
        results["load"] = load_phase(address, photos, args.requests, args.clients)
    results["kill"] = kill_phase(address, photos, args.kill_clients, model_args, log_dir)
    return results


def print_summary(results: dict) -> None:
    load, kill, memory = results["load"], results["kill"], results["memory"]
    print(f"load: {load['requests']} requests from {load['clients']} clients: {load['answered']} answered, "
          f"{load['failed']} failed {load['errors_by_code'] or ''}, {load['lost']} lost, {load['mismatched']} mismatched "
          f"({load['images_per_s']} images/s)")
    print(f"SIGKILL: every one of {kill['clients']} callers had an answer {kill['seconds_until_every_caller_answered']} s "
          f"after the kill ({kill['callers_unanswered']} unanswered, {kill['callers_stuck']} stuck; client timeout "
          f"{kill['client_timeout_ms']} ms x {kill['client_retries'] + 1} attempts); after the restart every caller was "
          f"served again within {kill['seconds_from_restart_ready_until_every_caller_served']} s")
    print(f"memory: idle backend {memory['idle_rss_mb']} MiB")
    for name, row in memory["images"].items():
        print(f"  {name} ({row['bytes'] // 1024} KiB) x{row['sent_at_once']} {row['outcomes']}: peak "
              f"{row['peak_rss_mb']} MiB = {row['peak_over_idle']}x idle, after {row['after_rss_mb']} MiB = "
              f"{row['after_over_idle']}x idle")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.fault_run", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--kill-clients", type=int, default=32)
    parser.add_argument("--model", help="model to serve (default: the backend's default)")
    parser.add_argument("--runtime", choices=("auto", "litert", "tensorflow"), help="the backend's runtime (default: its default, auto)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    results = run(args)
    print_summary(results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    ok = results["load"]["lost"] == 0 and results["load"]["mismatched"] == 0 and results["kill"]["callers_unanswered"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
