"""The bench's arithmetic: percentiles, load summaries, stage medians, the pipeline limit and its best forward pass.

Pure functions of numbers; the targets (:mod:`tools.bench.targets`) and the
load generator (:mod:`tools.bench.load`) are built on them.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence

import numpy as np

from model_backend.protocol import STAGES


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), numpy's linear interpolation, with clear errors for no values or a bad q."""
    if not values:
        raise ValueError("Expected at least one value to take a percentile of. Received: an empty sequence")
    if not 0 <= q <= 100:
        raise ValueError(f"Expected a percentile between 0 and 100. Received: q={q!r}")
    return float(np.percentile(values, q))


def summarize_load(latencies_ms: Sequence[float], wall_s: float, batch_sizes: Sequence[int] = (), errors: int = 0) -> dict:
    """p50/p95/p99/mean latency, images/s over the wall time, mean batch size, error count."""
    summary: dict = {"requests": len(latencies_ms), "errors": errors, "wall_s": round(wall_s, 3)}
    if latencies_ms:
        summary.update(
            p50_ms=round(percentile(latencies_ms, 50), 3),
            p95_ms=round(percentile(latencies_ms, 95), 3),
            p99_ms=round(percentile(latencies_ms, 99), 3),
            mean_ms=round(statistics.fmean(latencies_ms), 3),
            max_ms=round(max(latencies_ms), 3),
        )
    summary["images_per_s"] = round(len(latencies_ms) / wall_s, 3) if wall_s > 0 else None
    if batch_sizes:
        summary["mean_batch_size"] = round(statistics.fmean(batch_sizes), 3)
        summary["max_batch_size"] = max(batch_sizes)
    return summary


def median_stages(timings: Iterable[dict], stages: Sequence[str] = STAGES) -> dict:
    """Median of each named stage over many reply ``timings_ms`` dicts (stages absent everywhere are left out)."""
    collected: dict[str, list[float]] = {stage: [] for stage in stages}
    for timing in timings:
        for stage in stages:
            value = timing.get(stage)
            if isinstance(value, (int, float)):
                collected[stage].append(float(value))
    return {stage: round(statistics.median(values), 3) for stage, values in collected.items() if values}


#: how the pipeline limit is defined (printed with it)
PIPELINE_LIMIT_DEFINITION = (
    "pipeline limit (measured, all cores busy) = the most images/s that `cores` processes reach together, each with its "
    "own 1-thread LiteRT interpreter on the backend's flatbuffer, each decoding + preprocessing + forwarding the photo back "
    "to back (batch 1, and batch b = the 1-thread batch with the fewest ms per image in the forward table), started together "
    "and counted over the same window after a warm-up, the configs interleaved over rounds, median per config (one process "
    "with one all-cores interpreter is measured beside them); this is issue 9's 'best forward per image plus decode, spread "
    "over the cores' with every core working at once, as the service's cores do (shared caches and memory make both parts "
    "slower than alone). Also reported: the same limit read from CPU time, cores x 1000 / (the cheapest config's core-ms per "
    "image, all cores busy), which holds when other processes take CPU; and the arithmetic limit = cores x 1000 / "
    "(best_core_ms + decode_preprocess_ms), where best_core_ms = min over threads t and batch b of (forward wall ms per "
    "image at (t, b)) x t, each part timed alone"
)


def measured_limit(limit: dict) -> tuple[float | None, str]:
    """The limit the service is held to and how it was found: the measured one (all cores busy) where the run has it,
    else the arithmetic one (results from before it, or a runtime with no flatbuffer)."""
    busy = limit.get("busy_limit") or {}
    if busy.get("images_per_s"):
        return float(busy["images_per_s"]), "measured, all cores busy"
    value = limit.get("pipeline_limit_ips")
    return (float(value) if value else None), "arithmetic: parts timed alone"


def core_ms_per_image(row: dict) -> float:
    """One forward-table row's cost in core-milliseconds per image: wall ms per image x threads."""
    return float(row["ms_per_image"]) * int(row["threads"])


def best_forward(table: Sequence[dict]) -> dict:
    """The forward-table row (``threads``, ``batch``, ``ms_per_image``) with the fewest core-ms per image."""
    if not table:
        raise ValueError("Expected forward timings for at least one (threads, batch). Received: none")
    return min(table, key=lambda row: (core_ms_per_image(row), int(row["threads"]), int(row["batch"])))


def best_batch(table: Sequence[dict], threads: int = 1) -> int:
    """The batch size with the fewest ms per image at ``threads`` threads (the busy-cores limit runs 1-thread processes at it)."""
    rows = [row for row in table if int(row["threads"]) == threads]
    if not rows:
        raise ValueError(f"Expected forward timings at {threads} thread(s). Received: threads {sorted({row['threads'] for row in table})}")
    return int(min(rows, key=lambda row: (float(row["ms_per_image"]), int(row["batch"])))["batch"])


def pipeline_limit_ips(decode_preprocess_ms: float, best_core_ms: float, cores: int) -> float:
    """Images/s all ``cores`` reach when each image costs its decode+preprocess plus the cheapest forward (core-ms)."""
    if cores < 1:
        raise ValueError(f"Expected at least one core. Received: cores={cores!r}")
    per_image = decode_preprocess_ms + best_core_ms
    if per_image <= 0:
        raise ValueError(f"Expected a positive time per image. Received: {per_image!r} ms")
    return cores * 1000.0 / per_image


def run_at(section: dict | None, concurrency: int) -> dict | None:
    """The run of a section (service / http) at one concurrency, or None."""
    if not section or "runs" not in section:
        return None
    for run in section["runs"]:
        if run.get("concurrency") == concurrency:
            return run
    return None
