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
    "pipeline limit = cores x 1000 / (best_core_ms + decode_preprocess_ms), where best_core_ms = min over "
    "threads t and batch b of (forward wall ms per image at (t, b)) x t: the cheapest forward pass in core-ms "
    "per image, plus the photo's decode+preprocess (one core), spread over all cores"
)


def core_ms_per_image(row: dict) -> float:
    """One forward-table row's cost in core-milliseconds per image: wall ms per image x threads."""
    return float(row["ms_per_image"]) * int(row["threads"])


def best_forward(table: Sequence[dict]) -> dict:
    """The forward-table row (``threads``, ``batch``, ``ms_per_image``) with the fewest core-ms per image."""
    if not table:
        raise ValueError("Expected forward timings for at least one (threads, batch). Received: none")
    return min(table, key=lambda row: (core_ms_per_image(row), int(row["threads"]), int(row["batch"])))


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
