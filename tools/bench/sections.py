"""The bench's measurements, one function per section, in the order the run takes them.

1. :func:`bench_limit`: the in-process limit, in a child process
   (``python -m tools.bench --limit-only --json``, see :mod:`tools.bench.limit`)
   that exits before anything else starts.
2. :func:`bench_monolith`: fresh ``python -m model_backend.monolith IMG --json``
   processes, timed around the subprocess, with their own stage split.
3. :func:`bench_service`: the photo sent through one shared BackendClient by
   1, 4, 16 and 32 threads, and the backend's resident memory after.
4. :func:`bench_http`: the dashboard's ``POST /api/v1/classify`` at 1 and 16
   threads, and the dashboard's memory; skipped with a reason if it cannot start.
5. :func:`bench_workers`: 1 worker vs 2 workers behind the broker (threads split
   between them) at concurrency 16.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from tools.processes import BROKER_READY, DASHBOARD_READY, Child, ProcessError, backend_args, tail

from .load import http_senders, log_run, measure_levels, measure_load, warm_up, zmq_senders
from .meter import CpuMeter, disturbance, memory_mb, quietest
from .plan import HTTP_CONCURRENCY, SERVICE_CONCURRENCY, WORKERS_CONCURRENCY, BenchError, Plan
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
    walls, stages, top1 = [], [], None
    meter = CpuMeter()
    for index in range(runs):
        started = time.perf_counter()
        data, _ = run_json(["-m", "model_backend.monolith", str(image_path), "--json", *model_args], "the monolith",
                           MONOLITH_TIMEOUT_S)
        wall_ms = (time.perf_counter() - started) * 1000.0
        walls.append(wall_ms)
        stages.append(data["timings_ms"])
        top1 = (data.get("predictions") or [{}])[0]
        log.info("monolith run %d/%d: %.0f ms (%s)", index + 1, runs, wall_ms, data["timings_ms"])
    return {
        "runs": runs,
        "wall_ms": [round(w, 1) for w in walls],
        "median_wall_ms": round(statistics.median(walls), 1),
        "stages_ms": median_stages(stages, MONOLITH_STAGES),
        "top1": top1,
        **disturbance("the monolith", meter),
    }


# -- 3. the service and 4. the HTTP API -----------------------------------------------------------


def bench_service(address: str, photo: bytes, plan: Plan, backend: Child) -> dict:
    with client(address) as bench_client:
        runs = measure_levels("service", zmq_senders(bench_client, photo), SERVICE_CONCURRENCY, plan, {"backend": backend.pid})
        info = bench_client.info()
    keys = ("max_batch", "max_wait_ms", "queue_size", "decode_threads")
    return {"address": address, "settings": {k: info.get(k) for k in keys}, "runs": runs, **memory_mb(backend.pid)}


def bench_http(backend: Child, backend_address: str, photo: bytes, plan: Plan, log_dir: Path, work_dir: Path,
               dashboard_threads: int | None = None) -> dict:
    """Start the dashboard against the backend and load its HTTP API; ``{"skipped": reason}`` if it cannot run."""
    if importlib.util.find_spec("requests") is None:
        return {"skipped": "dashboard not available: requests is not installed (pip install requests)"}
    args = ["-m", "dashboard", "serve", "--host", "127.0.0.1", "--port", "0", "--backend", backend_address,
            "--data-dir", str(work_dir / "dashboard-data")]
    if dashboard_threads is not None:
        args += ["--threads", str(dashboard_threads)]
    try:
        with running("dashboard", args, log_dir) as dashboard:
            base_url = dashboard.wait_for(DASHBOARD_READY, timeout_s=120).group(1)
            wait_for_health(base_url)
            watch = {"backend": backend.pid, "dashboard": dashboard.pid}
            runs = measure_levels("HTTP API", http_senders(base_url + "/api/v1/classify", photo), HTTP_CONCURRENCY, plan, watch)
            memory = memory_mb(dashboard.pid)
    except (BenchError, ProcessError) as exc:
        log.warning("HTTP API skipped: %s", exc)
        return {"skipped": f"dashboard not available: {str(exc).splitlines()[0]}"}
    return {"url": base_url + "/api/v1/classify", "dashboard_threads": dashboard_threads or "default", "runs": runs, **memory}


# -- 5. workers behind the broker -----------------------------------------------------------------


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
            with client(front) as bench_client:
                make_sender = zmq_senders(bench_client, photo)
                warm_up(make_sender, plan)
                label = f"{workers} worker(s) x {threads} threads"
                watch = {f"worker{i}": child.pid for i, child in enumerate(children)}
                summary = quietest(label, lambda: measure_load(label, make_sender, WORKERS_CONCURRENCY, plan.requests_concurrent, watch), plan.attempts)
            log_run(label, summary)
            runs.append({"workers": workers, "intra_op_threads": threads, **summary})
    return {"concurrency": WORKERS_CONCURRENCY, "runs": runs}
