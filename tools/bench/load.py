"""The load runs: N requests in flight, each next one sent as soon as one is answered, and the summary of what they saw.

Two kinds of generator feed :func:`run_load`. The lean one
(:class:`~tools.bench.lean_load.Channels`: one thread for all N, see lean_load.py)
loads the service and the HTTP API for the targets. A *sender factory* makes one
thread's ``(send, close)`` pair: :func:`zmq_senders` shares one
:class:`~model_backend.client.BackendClient` between N threads, as the dashboard
calls it (the bench's "via BackendClient" row, and ``tools.bench.ab``).
:func:`measure_levels` warms up and then measures each concurrency level, with
how much other processes disturbed it.
"""

from __future__ import annotations

import logging
import math
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .lean_load import Channels, run_multiplexed
from .meter import CpuMeter, noisy, quietest
from .plan import BenchError, Plan
from .stats import median_stages, summarize_load

log = logging.getLogger("tools.bench")

#: makes one thread's sender: (send() -> reply dict, close())
SenderFactory = Callable[[], tuple[Callable[[], dict], Callable[[], None]]]


@dataclass
class LoadResult:
    """Everything one load run saw: per-request latencies and replies, errors, wall time."""

    concurrency: int
    latencies_ms: list[float] = field(default_factory=list)
    replies: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0


def run_load(make_sender: SenderFactory | Channels, concurrency: int, requests: int) -> LoadResult:
    """``requests`` requests from ``concurrency`` threads, each sending its next one as soon as the last is answered
    (:class:`~tools.bench.lean_load.Channels`: from one thread, ``concurrency`` connections, see lean_load.py)."""
    result = LoadResult(concurrency)
    if isinstance(make_sender, Channels):
        run_multiplexed(make_sender, concurrency, requests, result)
        return result
    lock = threading.Lock()
    remaining = [requests]
    barrier = threading.Barrier(concurrency + 1)

    def take() -> bool:
        with lock:
            if remaining[0] <= 0:
                return False
            remaining[0] -= 1
            return True

    def worker() -> None:
        try:
            send, close = make_sender()
        except Exception as exc:  # noqa: BLE001 - reported by the caller, not a hung barrier
            result.errors.append(f"could not start a sender: {type(exc).__name__}: {exc}")
            barrier.abort()
            return
        try:
            barrier.wait()
            while take():
                started = time.perf_counter()
                try:
                    reply = send()
                except Exception as exc:  # noqa: BLE001 - counted and reported, the run goes on
                    with lock:
                        result.errors.append(f"{type(exc).__name__}: {exc}"[:300])
                    continue
                elapsed = (time.perf_counter() - started) * 1000.0
                with lock:
                    result.latencies_ms.append(elapsed)
                    result.replies.append(reply)
        except threading.BrokenBarrierError:
            return
        finally:
            close()

    threads = [threading.Thread(target=worker, name=f"load-{i}", daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    try:
        barrier.wait()
    except threading.BrokenBarrierError:
        raise BenchError(f"The load generator could not start: {result.errors[0] if result.errors else 'unknown'}") from None
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    result.wall_s = time.perf_counter() - started
    return result


def summarize(result: LoadResult) -> dict:
    """Latency percentiles, images/s, batch sizes, the backend's stage medians and the transport overhead."""
    summary = {"concurrency": result.concurrency}
    batch_sizes = [r["batch_size"] for r in result.replies if isinstance(r.get("batch_size"), int)]
    summary.update(summarize_load(result.latencies_ms, result.wall_s, batch_sizes, len(result.errors)))
    summary["backend_stages_ms"] = median_stages(r.get("timings_ms") or {} for r in result.replies)
    overhead = [
        latency - r["timings_ms"]["total"]
        for latency, r in zip(result.latencies_ms, result.replies)
        if isinstance((r.get("timings_ms") or {}).get("total"), (int, float))
    ]
    if overhead:
        summary["outside_backend_ms"] = round(statistics.median(overhead), 3)
    web_tier = [
        latency - r["roundtrip_ms"]
        for latency, r in zip(result.latencies_ms, result.replies)
        if "backend_roundtrip_ms" in r and isinstance(r.get("roundtrip_ms"), (int, float))
    ]
    if web_tier:  # HTTP replies: time outside the dashboard's own call to the backend
        summary["web_tier_ms"] = round(statistics.median(web_tier), 3)
    if result.errors:
        summary["first_errors"] = sorted(set(result.errors))[:3]
    return summary


def log_run(label: str, summary: dict) -> None:
    log.info(
        "%s c=%d: %d ok, %d errors, p50 %.2f ms, p95 %.2f ms, p99 %.2f ms, %.1f images/s, mean batch %s",
        label, summary["concurrency"], summary["requests"], summary["errors"], summary.get("p50_ms", math.nan),
        summary.get("p95_ms", math.nan), summary.get("p99_ms", math.nan), summary.get("images_per_s") or 0.0,
        summary.get("mean_batch_size", "-"),
    )


def zmq_senders(client, photo: bytes) -> SenderFactory:
    """Every thread shares the one client (as the dashboard does); the client pools sockets per call."""
    return lambda: ((lambda: client.classify(photo)), (lambda: None))


def warm_up(make_sender: SenderFactory, plan: Plan) -> None:
    """Untimed requests first: connections, sockets and the server's threads get going."""
    result = run_load(make_sender, 4, plan.warmup_requests)
    if result.errors:
        raise BenchError(f"Warm-up requests failed: {result.errors[0]}")


def measure_load(label: str, make_sender: SenderFactory, concurrency: int, requests: int, watch: dict[str, int] | None = None) -> dict:
    """One load run, summarized, with how much other processes disturbed it and the CPU per request of
    the bench (the load generator) and of each watched process."""
    meter = CpuMeter(watch)
    summary = summarize(run_load(make_sender, concurrency, requests))
    reading = noisy(f"{label} c={concurrency}", meter.reading())
    answered = max(1, summary["requests"])
    cpu_per_request = {name: round(1000.0 * seconds / answered, 2) for name, seconds in reading.pop("cpu_s").items()}
    return {**summary, **reading, "cpu_ms_per_request": cpu_per_request}


def measure_levels(label: str, make_sender: SenderFactory, levels: Sequence[int], plan: Plan, watch: dict[str, int] | None = None) -> list[dict]:
    warm_up(make_sender, plan)
    runs = []
    for concurrency in levels:
        requests = plan.requests_at(concurrency)
        summary = quietest(f"{label} c={concurrency}", lambda: measure_load(label, make_sender, concurrency, requests, watch), plan.attempts)
        log_run(label, summary)
        runs.append(summary)
    return runs
