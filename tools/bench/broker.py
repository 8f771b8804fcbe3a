"""``python -m tools.bench.broker``: the broker alone, with stand-in workers (no TensorFlow), printed as a table.

Two numbers size the broker (README "Sizing"):

* **added latency**: p50 of one client (c=1) through the broker minus p50 of
  the same client straight to a stand-in server; the two are interleaved
  (A, B, A, B...) in ``--rounds`` rounds and the medians of the rounds are
  reported, so a noisy machine moves both alike;
* **requests/s one broker routes**: ``--workers`` stand-in workers whose
  forward pass returns at once (``--delay 0``: only a tiny PNG decode), loaded
  by ``--client-procs`` client processes of ``--threads`` threads each (one
  Python client process cannot feed a broker alone) for ``--seconds``; the
  broker's own CPU use is printed next to it: near 100% of one core, the
  broker is the bottleneck (it is one thread), well below, the clients or
  workers are.

Then the failover timings (``--no-failover`` skips them): a dead first
address, a broker SIGKILLed under load with clients listing two brokers and
workers serving both, and that broker restarted on its address.

Every process runs on this machine, so on a small machine the clients and
workers take cores the broker could have had: the requests/s is then a floor.

    python -m tools.bench.broker                   # ~1 minute on 2 cores
    python -m tools.bench.broker --workers 8 --client-procs 6 --threads 16 --seconds 10
"""

from __future__ import annotations

import argparse
import io
import logging
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tools import processes
from tools.processes import Child

from .stats import percentile

log = logging.getLogger("tools.bench.broker")

WORKER_READY = r"Worker ready on"
SERVER_READY = r"Backend ready on (\S+)"
BROKER_READY = r"Broker ready on (\S+) \(workers connect to (\S+)\)"


def tiny_png() -> bytes:
    """A 32x32 PNG: the stand-in model's input size, so decoding costs next to nothing."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (120, 40, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def _client(address: str):
    from model_backend.client import BackendClient
    from model_backend.settings import ClientSettings

    return BackendClient(ClientSettings(address=address, timeout_ms=30_000, retries=0))


def sequential_latencies(address: str, count: int, image: bytes) -> list[float]:
    """``count`` classify round trips from one caller (c=1), in ms."""
    latencies = []
    with _client(address) as client:
        for _ in range(count):
            started = time.perf_counter()
            client.classify(image)
            latencies.append((time.perf_counter() - started) * 1000.0)
    return latencies


def _load_process(address: str, threads: int, seconds: float, start_at: float, results) -> None:
    """One client process: ``threads`` callers sending back to back from ``start_at`` for ``seconds``; puts (done, errors, latencies)."""
    import threading

    image = tiny_png()
    client = _client(address)
    client.classify(image)  # connect and warm before the clock starts
    done, errors, latencies = [0], [0], []
    lock = threading.Lock()

    def caller() -> None:
        mine = []
        while time.time() < start_at:
            time.sleep(0.001)
        end = start_at + seconds
        failures = 0
        while time.time() < end:
            started = time.perf_counter()
            try:
                client.classify(image)
            except Exception:  # noqa: BLE001 - counted, the run goes on
                failures += 1
                continue
            mine.append((time.perf_counter() - started) * 1000.0)
        with lock:
            done[0] += len(mine)
            errors[0] += failures
            latencies.extend(mine[:: max(1, len(mine) // 500)])  # a sample is enough for percentiles

    pool = [threading.Thread(target=caller) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    client.close()
    results.put((done[0], errors[0], latencies))


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def throughput(address: str, broker_pid: int, client_procs: int, threads: int, seconds: float) -> dict:
    """Requests/s through ``address`` under load, the latencies seen, and the broker's CPU use meanwhile."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    start_at = time.time() + 3.0  # spawned clients import and connect first
    children = [context.Process(target=_load_process, args=(address, threads, seconds, start_at, results)) for _ in range(client_procs)]
    for child in children:
        child.start()
    time.sleep(max(0.0, start_at - time.time()))
    cpu_before, wall_before = cpu_seconds(broker_pid), time.monotonic()
    time.sleep(seconds)
    cpu_used, wall = cpu_seconds(broker_pid) - cpu_before, time.monotonic() - wall_before
    gathered = [results.get(timeout=seconds + 60) for _ in children]
    for child in children:
        child.join(30)
    done = sum(row[0] for row in gathered)
    latencies = [value for row in gathered for value in row[2]]
    return {
        "concurrency": client_procs * threads,
        "requests_per_s": done / seconds,
        "errors": sum(row[1] for row in gathered),
        "p50_ms": percentile(latencies, 50) if latencies else float("nan"),
        "p99_ms": percentile(latencies, 99) if latencies else float("nan"),
        "broker_cpu_pct": 100.0 * cpu_used / wall,
        "broker_cpu_us_per_request": 1e6 * cpu_used / done if done else float("nan"),
    }


def start(name: str, args: list[str], log_dir: Path, ready: str, children: list[Child]) -> tuple[str, ...]:
    """Start ``python ARGS`` (added to ``children`` at once, so it is stopped whatever happens); the ready line's groups."""
    child = processes.start(name, args, log_dir / f"{name}.log", env=processes.tool_env())
    children.append(child)
    return child.wait_for(ready).groups()


def run(args: argparse.Namespace) -> list[tuple[str, str]]:
    image = tiny_png()
    children: list[Child] = []
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="warmserve-bench-broker-") as folder:
        log_dir = Path(folder)
        try:
            worker_args = ["--delay", "0", "--max-batch", str(args.max_batch), "--queue-size", "1024"]
            frontend, backend = start("broker", ["-m", "model_backend", "broker", "--frontend", "tcp://127.0.0.1:*",
                                                 "--backend", "tcp://127.0.0.1:*"], log_dir, BROKER_READY, children)
            broker = children[-1]
            for index in range(args.workers):
                start(f"worker-{index}", ["-m", "tests.support.standin_worker", "--connect", backend, *worker_args], log_dir, WORKER_READY, children)
            (direct,) = start("direct", ["-m", "tests.support.standin_worker", "--bind", "tcp://127.0.0.1:*", *worker_args],
                              log_dir, SERVER_READY, children)
            server = children[-1]
            _wait_for_workers(frontend, args.workers)

            through, straight = [], []
            for address in (frontend, direct):
                sequential_latencies(address, 50, image)  # warm both paths
            for _ in range(args.rounds):  # interleaved: A, B, A, B...
                through.append(statistics.median(sequential_latencies(frontend, args.requests, image)))
                straight.append(statistics.median(sequential_latencies(direct, args.requests, image)))
            p50_broker, p50_direct = statistics.median(through), statistics.median(straight)
            rows += [
                ("c=1 p50 direct to a stand-in server", f"{p50_direct:.3f} ms"),
                ("c=1 p50 through the broker", f"{p50_broker:.3f} ms"),
                ("broker's added latency (p50 difference)", f"{p50_broker - p50_direct:.3f} ms  (ratio {p50_broker / p50_direct:.2f}x)"),
                ("  rounds (broker / direct, ms)", " ".join(f"{a:.2f}/{b:.2f}" for a, b in zip(through, straight))),
            ]
            for procs in args.client_procs:
                load = throughput(frontend, broker.pid, procs, args.threads, args.seconds)
                rows.append((
                    f"routed, {args.workers} workers, c={load['concurrency']} ({procs} procs x {args.threads})",
                    f"{load['requests_per_s']:.0f} requests/s, p50 {load['p50_ms']:.2f} ms, p99 {load['p99_ms']:.2f} ms, "
                    f"broker CPU {load['broker_cpu_pct']:.0f}% of a core, {load['errors']} errors",
                ))
                rows.append((
                    "  broker CPU per request (one core saturates at)",
                    f"{load['broker_cpu_us_per_request']:.0f} us  (~{1e6 / load['broker_cpu_us_per_request']:.0f} requests/s)",
                ))
            direct_load = throughput(direct, server.pid, args.client_procs[-1], args.threads, args.seconds)
            rows.append((
                f"direct to one stand-in server, c={direct_load['concurrency']}",
                f"{direct_load['requests_per_s']:.0f} requests/s, p50 {direct_load['p50_ms']:.2f} ms (server CPU {direct_load['broker_cpu_pct']:.0f}%)",
            ))
        finally:
            for child in reversed(children):
                child.stop()
        if not args.no_failover:
            rows += failover(args, log_dir)
    rows.append(("machine", f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} (everything on this one machine)"))
    return rows


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def failover(args: argparse.Namespace, log_dir: Path) -> list[tuple[str, str]]:
    """How fast clients and workers get past a dead broker: two brokers, workers on both, clients listing both."""
    image = tiny_png()
    children: list[Child] = []
    rows: list[tuple[str, str]] = []
    ports = {name: (free_port(), free_port()) for name in ("a", "b")}
    fronts = {name: f"tcp://127.0.0.1:{front}" for name, (front, _) in ports.items()}
    backs = {name: f"tcp://127.0.0.1:{back}" for name, (_, back) in ports.items()}

    def broker(name: str, run: int = 0) -> Child:
        start(f"broker-{name}-{run}", ["-m", "model_backend", "broker", "--frontend", fronts[name], "--backend", backs[name]],
              log_dir, BROKER_READY, children)
        return children[-1]

    try:
        first = broker("a")
        broker("b")
        for index in range(args.workers):
            start(f"failover-worker-{index}", ["-m", "tests.support.standin_worker", "--connect", f"{backs['a']},{backs['b']}",
                                               "--delay", "0.005", "--heartbeat-ms", "1000"], log_dir, WORKER_READY, children)
        _wait_for_workers(fronts["a"], args.workers)
        _wait_for_workers(fronts["b"], args.workers)

        dead = f"tcp://127.0.0.1:{free_port()}"
        with _client(f"{dead},{fronts['b']}") as client:
            started = time.perf_counter()
            client.classify(image)
            first_ms = (time.perf_counter() - started) * 1000.0
            later = sequential_latencies_with(client, 20, image)
        rows.append(("failover: first address dead (connect_timeout_ms 1000)",
                     f"first call {first_ms:.0f} ms, later calls p50 {statistics.median(later):.2f} ms (they start at the one that answered)"))

        killed_at, calls = _kill_under_load(first, f"{fronts['a']},{fronts['b']}", image, concurrency=4)
        spanning = [end - killed_at for begin, end, ok in calls if begin < killed_at < end]
        after = [end - begin for begin, end, ok in calls if begin >= killed_at]
        errors = sum(1 for *_, ok in calls if not ok)
        rows.append(("failover: broker A SIGKILLed under load (c=4, A,B listed)",
                     f"{len(calls)} calls, {errors} errors; in flight at the kill answered within {max(spanning, default=0) * 1000:.0f} ms; "
                     f"slowest call after it {max(after, default=0) * 1000:.0f} ms"))

        restarted = time.monotonic()
        broker("a", 1)
        _wait_for_workers(fronts["a"], args.workers, poll_s=0.02)
        rows.append(("broker A restarted on its address: all workers back",
                     f"{(time.monotonic() - restarted) * 1000:.0f} ms after the restart began (worker heartbeat 1000 ms, nothing else restarted)"))
    finally:
        for child in reversed(children):
            child.stop()
    return rows


def sequential_latencies_with(client, count: int, image: bytes) -> list[float]:
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        client.classify(image)
        latencies.append((time.perf_counter() - started) * 1000.0)
    return latencies


def _kill_under_load(victim: Child, addresses: str, image: bytes, concurrency: int) -> tuple[float, list[tuple[float, float, bool]]]:
    """Callers loop on ``addresses``; ``victim`` is SIGKILLed 1 s in; they go on 2 s more. (kill time, [(begin, end, ok)])."""
    import threading

    calls: list[tuple[float, float, bool]] = []
    stop = threading.Event()
    lock = threading.Lock()
    client = _client(addresses)

    def caller() -> None:
        while not stop.is_set():
            begin = time.monotonic()
            try:
                client.classify(image)
                ok = True
            except Exception:  # noqa: BLE001 - counted
                ok = False
            with lock:
                calls.append((begin, time.monotonic(), ok))

    threads = [threading.Thread(target=caller) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    killed_at = time.monotonic()
    victim.kill()
    time.sleep(2.0)
    stop.set()
    for thread in threads:
        thread.join(60)
    client.close()
    return killed_at, calls


def _wait_for_workers(frontend: str, count: int, timeout_s: float = 60, poll_s: float = 0.1) -> None:
    deadline = time.monotonic() + timeout_s
    with _client(frontend) as client:
        while True:
            try:
                if len(client.info()["workers"]) >= count:
                    return
            except Exception:  # noqa: BLE001 - a broker still starting
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"Expected {count} workers at the broker within {timeout_s:.0f} s")
            time.sleep(poll_s)


def print_table(rows: list[tuple[str, str]], command: str) -> None:
    width = max(len(name) for name, _ in rows)
    print(f"Broker benchmark ({command})")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.broker", description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="stand-in workers behind the broker (default 2)")
    parser.add_argument("--max-batch", type=int, default=16, help="each worker's max batch; capacity is twice it (default 16)")
    parser.add_argument("--client-procs", type=int, nargs="+", default=[1, 2], help="client processes per load run (default 1 2)")
    parser.add_argument("--threads", type=int, default=8, help="caller threads per client process (default 8)")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each load run (default 5)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved c=1 rounds (default 5)")
    parser.add_argument("--requests", type=int, default=200, help="c=1 requests per round and path (default 200)")
    parser.add_argument("--no-failover", action="store_true", help="skip the failover timings (two brokers, one killed and restarted)")
    args = parser.parse_args(argv)
    logging.basicConfig(level="WARNING", stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    print_table(run(args), "python -m tools.bench.broker " + " ".join(argv if argv is not None else sys.argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
