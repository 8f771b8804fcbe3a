"""The targets: each a ratio between two numbers of the same bench run, with a PASS / MISS / SKIP verdict.

:func:`evaluate_targets` reads a results dict (see :mod:`tools.bench.report`
for its shape) and returns one :class:`Target` row per target of the brief.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from .stats import run_at

PASS, MISS, SKIP = "PASS", "MISS", "SKIP"


@dataclass(frozen=True)
class Target:
    """One target: what is compared, the threshold, what was measured, and the verdict."""

    name: str
    target: str
    measured: float | None
    status: str
    detail: str = ""

    def measured_text(self) -> str:
        return "-" if self.measured is None else f"{self.measured:.3g}"


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator in (None, 0):
        return None
    return numerator / denominator


def _verdict(value: float | None, threshold: float, at_least: bool) -> str:
    if value is None:
        return SKIP
    ok = value >= threshold if at_least else value <= threshold
    return PASS if ok else MISS


def _skip_reason(*parts: tuple[str, object]) -> str:
    missing = [name for name, value in parts if value is None]
    return "no data: " + ", ".join(missing) if missing else ""


def evaluate_targets(results: dict) -> list[Target]:
    """Every target of the brief, each a ratio (or one absolute time) from this one run."""
    limit = results.get("limit") or {}
    request_p50 = limit.get("request_p50_ms")
    pipeline = limit.get("pipeline_limit_ips")
    service1, service16 = run_at(results.get("service"), 1), run_at(results.get("service"), 16)
    http1, http16 = run_at(results.get("http"), 1), run_at(results.get("http"), 16)
    monolith_ms = (results.get("monolith") or {}).get("median_wall_ms")
    get = lambda run, key: None if run is None else run.get(key)  # noqa: E731

    targets = [
        _latency_target("service p50 @c1 / in-process request p50", get(service1, "p50_ms"), request_p50, slack_ms=2.0),
        _throughput_target("service images/s @c16 / pipeline limit", get(service16, "images_per_s"), pipeline),
        _tail_target("service p99 / p50 @c16", get(service16, "p99_ms"), get(service16, "p50_ms")),
        _latency_target("HTTP API p50 @c1 / in-process request p50", get(http1, "p50_ms"), request_p50, slack_ms=None),
        _throughput_target("HTTP API images/s @c16 / pipeline limit", get(http16, "images_per_s"), pipeline),
        _monolith_target(monolith_ms, get(service1, "p50_ms")),
        _decode_target(limit.get("decode_preprocess_12mp_ms")),
    ]
    for section, label in (("http", "HTTP API"), ("monolith", "monolith")):
        reason = (results.get(section) or {}).get("skipped")
        if reason:
            targets = [
                Target(t.name, t.target, None, SKIP, f"skipped: {reason}") if label in t.name and t.status == SKIP else t
                for t in targets
            ]
    return targets


def _latency_target(name: str, measured_ms: float | None, reference_ms: float | None, slack_ms: float | None) -> Target:
    ratio = _ratio(measured_ms, reference_ms)
    target = "<= 1.10" + (f" (or <= +{slack_ms:g} ms)" if slack_ms is not None else "")
    if ratio is None:
        return Target(name, target, None, SKIP, _skip_reason(("measured", measured_ms), ("reference", reference_ms)))
    extra = measured_ms - reference_ms
    status = _verdict(ratio, 1.10, at_least=False)
    if status == MISS and slack_ms is not None and extra <= slack_ms:
        status = PASS
    return Target(name, target, ratio, status, f"{measured_ms:.2f} ms vs {reference_ms:.2f} ms ({extra:+.2f} ms)")


def _throughput_target(name: str, measured_ips: float | None, limit_ips: float | None) -> Target:
    ratio = _ratio(measured_ips, limit_ips)
    if ratio is None:
        return Target(name, ">= 0.85", None, SKIP, _skip_reason(("measured", measured_ips), ("limit", limit_ips)))
    return Target(name, ">= 0.85", ratio, _verdict(ratio, 0.85, at_least=True), f"{measured_ips:.1f} vs {limit_ips:.1f} images/s")


def _tail_target(name: str, p99_ms: float | None, p50_ms: float | None) -> Target:
    ratio = _ratio(p99_ms, p50_ms)
    if ratio is None:
        return Target(name, "<= 2.5", None, SKIP, _skip_reason(("p99", p99_ms), ("p50", p50_ms)))
    return Target(name, "<= 2.5", ratio, _verdict(ratio, 2.5, at_least=False), f"p99 {p99_ms:.1f} ms, p50 {p50_ms:.1f} ms")


def _monolith_target(monolith_ms: float | None, service_p50_ms: float | None) -> Target:
    name = "monolith per request / service p50 @c1"
    ratio = _ratio(monolith_ms, service_p50_ms)
    if ratio is None:
        return Target(name, ">= 50", None, SKIP, _skip_reason(("monolith", monolith_ms), ("service", service_p50_ms)))
    return Target(name, ">= 50", ratio, _verdict(ratio, 50, at_least=True), f"{monolith_ms:.0f} ms vs {service_p50_ms:.2f} ms")


def _decode_target(decode_ms: float | None) -> Target:
    name = "decode+preprocess of a 12-MP JPEG (ms)"
    if decode_ms is None:
        return Target(name, "<= 15 ms", None, SKIP, "no data")
    return Target(name, "<= 15 ms", decode_ms, _verdict(decode_ms, 15.0, at_least=False), f"{decode_ms:.2f} ms (p50)")


def targets_as_dicts(targets: Sequence[Target]) -> list[dict]:
    return [asdict(t) for t in targets]
