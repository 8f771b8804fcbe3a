"""The bench's measurements, one function per section, in the order the run takes them.

1. :func:`bench_limit`: the in-process limit, in a child process
   (``python -m tools.bench --limit-only --json``, see :mod:`tools.bench.limit`)
   that exits before anything else starts.
2. :func:`bench_monolith`: fresh ``python -m model_backend.monolith IMG --json``
   processes (always TensorFlow), timed around the subprocess, with their own stage split.
3. :func:`bench_startup`: backend starts, spawn to the ``Backend ready on`` line;
   the first fills the model cache, the next ones are timed with it cached.
4. :func:`bench_service`: the photo sent at concurrency 1, 4, 16 and 32 by the lean
   load generator (one thread, :mod:`tools.bench.lean_load`), then at 16 through one
   shared BackendClient by 16 threads (as the dashboard calls it), the runtime the
   backend's ``info`` reports, and its resident memory after; run again on a second
   backend with ``--runtime tensorflow``.
5. :func:`bench_http`: the dashboard's ``POST /api/v1/classify`` at 1 and 16
   threads, with the bench photo and again with the 220 KB chelsea PNG (the
   issue's absolute aims), and the dashboard's memory; skipped with a reason if
   it cannot start.
   :func:`dashboard_running` keeps the dashboard up for the paired rounds after it
   (:mod:`tools.bench.paired`: the ratio targets' two sides measured seconds apart,
   round after round).
6. :func:`bench_workers`: 1 worker vs 2 workers behind the broker (threads split
   between them) at concurrency 16.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import re
import statistics
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tools.processes import BACKEND_READY, BROKER_READY, DASHBOARD_READY, Child, ProcessError, backend_args, tail

from .lean_load import http_channels, zmq_channels
from .load import log_run, measure_levels, measure_load, warm_up, zmq_senders
from .meter import CpuMeter, disturbance, memory_mb, quietest
from .plan import CLIENT_THREADS_CONCURRENCY, HTTP_CONCURRENCY, SERVICE_CONCURRENCY, WORKERS_CONCURRENCY, BenchError, Plan, photo_png
from .processes import client, run_json, running, wait_for_health, wait_for_workers
from .stats import median_stages

log = logging.getLogger("tools.bench")

MONOLITH_STAGES = ("startup", "import", "model_load", "preprocess", "inference", "total")
LIMIT_TIMEOUT_S = 900
MONOLITH_TIMEOUT_S = 600


# -- 1. the limit ---------------------------------------------------------------------------------


def bench_limit(model_args: Sequence[str], quick: bool, log_dir: Path) -> dict:
    """Measure the limit in a child process, so its TensorFlow runtime is gone before the service runs."""
    command = ["-m", "tools.bench", "--limit-only", "--json", *model_args] + (["--quick"] if quick else [])
    log_path = log_dir / "limit.log"
    log.info("The limit: %s (log %s)", " ".join(command), log_path)
    meter = CpuMeter()
    with open(log_path, "wb") as log_file:
        try:
            data, _ = run_json(command, "the limit run", LIMIT_TIMEOUT_S, stderr=log_file)
        except BenchError as exc:
            raise BenchError(f"The in-process limit run failed ({str(exc).splitlines()[0][:200]}):\n{tail(log_path)}") from None
    return {**data, **disturbance("the limit", meter)}


# -- 2. the monolith ------------------------------------------------------------------------------


def bench_monolith(model_args: Sequence[str], image_path: Path, runs: int) -> dict:
    """``runs`` fresh monolith processes, timed around the subprocess; median wall time and median stages."""
    walls, stages, top1, runtime = [], [], None, "?"
    meter = CpuMeter()
    for index in range(runs):
        started = time.perf_counter()
        data, _ = run_json(["-m", "model_backend.monolith", str(image_path), "--json", *model_args], "the monolith",
                           MONOLITH_TIMEOUT_S)
        wall_ms = (time.perf_counter() - started) * 1000.0
        walls.append(wall_ms)
        stages.append(data["timings_ms"])
        top1 = (data.get("predictions") or [{}])[0]
        runtime = data.get("runtime") or "?"
        log.info("monolith run %d/%d: %.0f ms (%s)", index + 1, runs, wall_ms, data["timings_ms"])
    return {
        "runs": runs,
        "runtime": runtime,
        "wall_ms": [round(w, 1) for w in walls],
        "median_wall_ms": round(statistics.median(walls), 1),
        "stages_ms": median_stages(stages, MONOLITH_STAGES),
        "top1": top1,
        **disturbance("the monolith", meter),
    }


# -- 3. backend start-up ------------------------------------------------------------------------


def time_start(name: str, model_args: Sequence[str], log_dir: Path) -> tuple[float, dict]:
    """Seconds from spawning a backend to its ``Backend ready on`` line, and the runtime its ``info`` reports."""
    started = time.perf_counter()
    with running(name, backend_args(model_args, "--bind", "tcp://127.0.0.1:*"), log_dir) as backend:
        address = backend.wait_for(BACKEND_READY, poll_s=0.01).group(1)
        elapsed = time.perf_counter() - started
        with client(address) as bench_client:
            runtime = runtime_of(bench_client.info())
    log.info("%s: ready in %.2f s on %s", name, elapsed, runtime["runtime"])
    return elapsed, runtime


def bench_startup(model_args: Sequence[str], runs: int, log_dir: Path, attempts: int = 1) -> dict:
    """A first start (which converts and caches the model if it is not cached yet), then ``runs`` timed starts
    (measured again, up to ``attempts`` times, while other processes disturb them)."""
    first_s, _ = time_start("backend-start-1", model_args, log_dir)

    def timed_starts() -> dict:
        meter = CpuMeter()
        timed = [time_start(f"backend-start-{index + 2}", model_args, log_dir) for index in range(runs)]
        return {
            "first_start_s": round(first_s, 3),
            "starts_s": [round(seconds, 3) for seconds, _ in timed],
            "median_s": round(statistics.median(seconds for seconds, _ in timed), 3),
            **timed[-1][1],
            **disturbance("backend starts", meter),
        }

    return quietest("backend starts", timed_starts, attempts)


# -- 4. the service (LiteRT, then TensorFlow) and 5. the HTTP API -----------------------------------


#: the lines a backend or worker logs once its model is loaded: ``Runtime: litert (why)``, ``Backend ready on ... execution=pool``
RUNTIME_LINE = re.compile(r"Runtime: (\S+) \((.*)\)\s*$", re.MULTILINE)
EXECUTION_IN_READY_LINE = re.compile(r"Backend ready on .*\bexecution=(\w+)")


def runtime_of(info: dict) -> dict:
    """``runtime`` and ``runtime_reason`` as the backend's ``info`` reports them (``?`` if it does not say), and
    ``execution`` / ``execution_reason`` / ``pool_batch`` where it reports them."""
    found = {"runtime": info.get("runtime") or "?", "runtime_reason": info.get("runtime_reason") or ""}
    for key in ("execution", "execution_reason", "pool_batch"):
        if info.get(key):
            found[key] = info[key]
    return found


def runtime_from_log(child: Child) -> dict:
    """The runtime (and execution) a worker logged, since the broker's ``info`` does not pass them on; ``?`` if absent."""
    text = child.log_text()
    match, execution = RUNTIME_LINE.search(text), EXECUTION_IN_READY_LINE.search(text)
    found = {"runtime": match.group(1), "runtime_reason": match.group(2)} if match else {"runtime": "?", "runtime_reason": ""}
    return {**found, "execution": execution.group(1)} if execution else found


def bench_service(address: str, photo: bytes, plan: Plan, backend: Child, levels: Sequence[int] = SERVICE_CONCURRENCY) -> dict:
    """Load the backend at ``address`` at each concurrency level; its runtime, settings and memory after."""
    with client(address) as bench_client:
        runtime = runtime_of(bench_client.info())
        label = f"service [{runtime['runtime']}]"
        generator = zmq_channels(address, photo)
        watch = {"backend": backend.pid}
        runs = measure_levels(label, generator, levels, plan, watch)
        threaded = None
        if CLIENT_THREADS_CONCURRENCY in levels:
            threaded_label = f"{label} via BackendClient, {CLIENT_THREADS_CONCURRENCY} threads"
            senders = zmq_senders(bench_client, photo)
            warm_up(senders, plan)
            threaded = quietest(threaded_label, lambda: measure_load(threaded_label, senders, CLIENT_THREADS_CONCURRENCY,
                                                                     plan.requests_at(CLIENT_THREADS_CONCURRENCY), watch), plan.attempts)
            log_run(threaded_label, threaded)
        info = bench_client.info()
    keys = ("max_batch", "max_wait_ms", "queue_size", "decode_threads")
    return {"address": address, **runtime, "settings": {k: info.get(k) for k in keys}, "load_generator": generator.describe,
            "runs": runs, "client_threads": threaded, **memory_mb(backend.pid)}


@dataclass(frozen=True)
class Dashboard:
    """The dashboard while it runs against the bench's backend: its process and its classify URL."""

    child: Child
    url: str


@contextlib.contextmanager
def dashboard_running(skip_reason: str | None, backend_address: str, log_dir: Path, work_dir: Path,
                      dashboard_threads: int | None = None) -> Iterator[Dashboard | str]:
    """The dashboard against the backend, healthy, while the block runs; or (yielded instead) why it does not run."""
    if skip_reason:
        yield skip_reason
        return
    if importlib.util.find_spec("requests") is None:
        yield "dashboard not available: requests is not installed (pip install requests)"
        return
    args = ["-m", "dashboard", "serve", "--host", "127.0.0.1", "--port", "0", "--backend", backend_address,
            "--data-dir", str(work_dir / "dashboard-data")]
    if dashboard_threads is not None:
        args += ["--threads", str(dashboard_threads)]
    with contextlib.ExitStack() as stack:
        try:
            child = stack.enter_context(running("dashboard", args, log_dir))
            base_url = child.wait_for(DASHBOARD_READY, timeout_s=120).group(1)
            wait_for_health(base_url)
        except (BenchError, ProcessError) as exc:
            log.warning("HTTP API skipped: %s", exc)
            stack.close()  # stopped before the block runs without it
            why_not = f"dashboard not available: {str(exc).splitlines()[0]}"
        else:
            why_not = None
        yield why_not or Dashboard(child, base_url + "/api/v1/classify")


def bench_http(backend: Child, dashboard: Dashboard | str, photo: bytes, plan: Plan, dashboard_threads: int | None = None) -> dict:
    """Load the dashboard's HTTP API (the bench photo, then the chelsea PNG); ``{"skipped": reason}`` if it cannot run."""
    if isinstance(dashboard, str):
        return {"skipped": dashboard}
    try:
        watch = {"backend": backend.pid, "dashboard": dashboard.child.pid}
        generator = http_channels(dashboard.url, photo)
        runs = measure_levels("HTTP API", generator, HTTP_CONCURRENCY, plan, watch)
        png_runs = measure_levels("HTTP API (PNG)", http_channels(dashboard.url, photo_png(), "chelsea.png", "image/png"),
                                  HTTP_CONCURRENCY, plan, watch)
        memory = memory_mb(dashboard.child.pid)
    except (BenchError, ProcessError) as exc:
        log.warning("HTTP API skipped: %s", exc)
        return {"skipped": f"dashboard not available: {str(exc).splitlines()[0]}"}
    return {"url": dashboard.url, "dashboard_threads": dashboard_threads or "default", "load_generator": generator.describe,
            "runs": runs, "png_runs": png_runs, **memory}


# -- 6. workers behind the broker -----------------------------------------------------------------


def bench_workers(model_args: Sequence[str], photo: bytes, plan: Plan, log_dir: Path) -> dict:
    """Throughput at c=16 of 1 worker with all cores' intra-op threads vs 2 workers splitting them."""
    cores = os.cpu_count() or 2
    runs = []
    for workers, threads in ((1, cores), (2, max(1, cores // 2))):
        broker_args = ["-m", "model_backend", "broker", "--frontend", "tcp://127.0.0.1:*", "--backend", "tcp://127.0.0.1:*"]
        with contextlib.ExitStack() as stack:
            broker = stack.enter_context(running(f"broker-{workers}w", broker_args, log_dir))
            front, back = broker.wait_for(BROKER_READY, timeout_s=60).groups()
            children = [
                stack.enter_context(running(f"worker-{workers}w-{i}", backend_args(model_args, "--connect", back, "--intra-op-threads", str(threads)), log_dir))
                for i in range(workers)
            ]
            wait_for_workers(front, workers, children)
            make_sender = zmq_channels(front, photo)
            warm_up(make_sender, plan)
            label = f"{workers} worker(s) x {threads} threads"
            watch = {f"worker{i}": child.pid for i, child in enumerate(children)}
            summary = quietest(label, lambda: measure_load(label, make_sender, WORKERS_CONCURRENCY, plan.requests_concurrent, watch), plan.attempts)
            runtime = runtime_from_log(children[0])
            log_run(label, summary)
            runs.append({"workers": workers, "intra_op_threads": threads, **runtime, **summary})
    return {"concurrency": WORKERS_CONCURRENCY, "runs": runs}
