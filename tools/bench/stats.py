"""The bench's arithmetic: percentiles, load summaries, stage medians, the pipeline limit, the best batch size.

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


def pipeline_limit_ips(decode_preprocess_ms: float, forward_per_image_ms: float) -> float:
    """Images/s one process can reach doing decode+preprocess and the batched forward pass back to back."""
    per_image = decode_preprocess_ms + forward_per_image_ms
    if per_image <= 0:
        raise ValueError(f"Expected a positive time per image. Received: {per_image!r} ms")
    return 1000.0 / per_image


def best_batch(forward_per_image_ms: dict) -> tuple[int, float]:
    """The batch size with the lowest forward time per image, and that time (keys may be str or int)."""
    if not forward_per_image_ms:
        raise ValueError("Expected forward timings for at least one batch size. Received: none")
    size, value = min(forward_per_image_ms.items(), key=lambda item: (item[1], int(item[0])))
    return int(size), float(value)


def run_at(section: dict | None, concurrency: int) -> dict | None:
    """The run of a section (service / http) at one concurrency, or None."""
    if not section or "runs" not in section:
        return None
    for run in section["runs"]:
        if run.get("concurrency") == concurrency:
            return run
    return None
