"""The bench's pure half: percentiles, load summaries, targets, and the table / JSON / PNG outputs.

Nothing here starts a process, imports TensorFlow or measures anything: it
turns a results dict (built by :mod:`model_backend.bench`) into

* a list of :class:`Target` rows (target, measured, PASS / MISS / SKIP), each a
  ratio between two numbers of the same run;
* plain-text tables for the console and a markdown report for the README;
* a two-panel PNG drawn with Pillow's ImageDraw (latency and images/s against
  concurrency, the pipeline limit as a horizontal line, the monolith as a label).

The results dict (also the JSON file) looks like::

    {"model": ..., "weights": ..., "timing_only": bool, "quick": bool,
     "limit": {"request_p50_ms", "decode_preprocess_ms", "decode_preprocess_12mp_ms",
               "forward_per_image_ms": {"1": .., "2": ..}, "best_batch", "pipeline_limit_ips", ...},
     "service": {"runs": [{"concurrency", "p50_ms", "p95_ms", "p99_ms", "images_per_s", "mean_batch_size", ...}],
                 "rss_mb": ..},
     "http": {"runs": [...], "rss_mb": ..} or {"skipped": reason},
     "monolith": {"median_wall_ms", "stages_ms": {...}} or {"skipped": reason},
     "workers": {...} or {"skipped": reason},
     "targets": [...]}
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

PASS, MISS, SKIP = "PASS", "MISS", "SKIP"

#: reply timing stages the backend reports, in pipeline order
STAGES = ("queue", "decode", "preprocess", "inference", "total")


# -- statistics ------------------------------------------------------------------


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


# -- targets ---------------------------------------------------------------------


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


# -- tables ----------------------------------------------------------------------


def text_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table with aligned columns (for the console and the log)."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured markdown table."""
    out = ["| " + " | ".join(str(h) for h in headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    out += ["| " + " | ".join(_cell(v).replace("|", "\\|") for v in row) + " |" for row in rows]
    return "\n".join(out)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.1f}" if abs(value) >= 100 else f"{value:.2f}"
    return str(value)


def model_label(results: dict) -> str:
    """``resnet50 (random weights, timing only)`` or ``efficientnet-lite0``."""
    label = results.get("model", "?")
    if results.get("timing_only"):
        label += " (random weights, timing only)"
    return label


LOAD_HEADERS = ("path", "concurrency", "requests", "errors", "p50 ms", "p95 ms", "p99 ms", "images/s", "mean batch", "others' CPU %")


def load_rows(results: dict) -> list[list[object]]:
    rows = []
    for section, label in (("service", "service (ZeroMQ)"), ("http", "HTTP API")):
        for run in (results.get(section) or {}).get("runs", []):
            rows.append([
                label, run["concurrency"], run["requests"], run["errors"], run.get("p50_ms"), run.get("p95_ms"),
                run.get("p99_ms"), run.get("images_per_s"), run.get("mean_batch_size"), run.get("others_cpu_pct"),
            ])
    return rows


STAGE_HEADERS = ("path", "concurrency", "queue", "decode", "preprocess", "inference", "backend total", "outside backend", "web tier",
                 "CPU ms/req: backend", "dashboard", "load generator")


def stage_rows(results: dict) -> list[list[object]]:
    """Where the time goes: medians of the backend's own stage timings, and what lies outside them (ms)."""
    rows = []
    for section, label in (("service", "service (ZeroMQ)"), ("http", "HTTP API")):
        for run in (results.get(section) or {}).get("runs", []):
            stages = run.get("backend_stages_ms") or {}
            cpu = run.get("cpu_ms_per_request") or {}
            rows.append([label, run["concurrency"], *(stages.get(s) for s in STAGES), run.get("outside_backend_ms"), run.get("web_tier_ms"),
                         cpu.get("backend"), cpu.get("dashboard"), cpu.get("bench")])
    return rows


def limit_rows(results: dict) -> list[list[object]]:
    limit = results.get("limit") or {}
    if not limit:
        return []
    forward = limit.get("forward_per_image_ms", {})
    per_batch = ", ".join(f"{b}: {float(ms):.2f}" for b, ms in forward.items())
    return [
        ["in-process request p50 (decode + preprocess + forward @1)", f"{limit['request_p50_ms']:.2f} ms"],
        ["decode + preprocess p50 (photo)", f"{limit['decode_preprocess_ms']:.2f} ms"],
        ["decode + preprocess p50 (12-MP JPEG)", f"{limit['decode_preprocess_12mp_ms']:.2f} ms"],
        ["forward @1", f"{limit['forward_batch1_ms']:.2f} ms"],
        ["forward per image by batch size (ms)", per_batch],
        [f"best batch {limit['best_batch']}", f"{limit['best_forward_per_image_ms']:.2f} ms per image"],
        ["pipeline limit", f"{limit['pipeline_limit_ips']:.1f} images/s"],
    ] + ([["other processes' CPU meanwhile", f"{limit['others_cpu_pct']:.0f}% of the machine"]] if "others_cpu_pct" in limit else [])


def other_rows(results: dict) -> list[list[object]]:
    rows: list[list[object]] = []
    monolith = results.get("monolith") or {}
    if monolith.get("skipped"):
        rows.append(["monolith", f"skipped: {monolith['skipped']}"])
    elif monolith:
        stages = ", ".join(f"{k} {v:.0f}" for k, v in monolith.get("stages_ms", {}).items())
        noise = f"; others' CPU {monolith['others_cpu_pct']:.0f}%" if "others_cpu_pct" in monolith else ""
        rows.append([f"monolith per request (median of {monolith['runs']})", f"{monolith['median_wall_ms']:.0f} ms ({stages} ms{noise})"])
    for section, label in (("service", "backend"), ("http", "dashboard")):
        data = results.get(section) or {}
        if data.get("rss_mb") is not None:
            rows.append([f"{label} RSS after load", f"{data['rss_mb']:.0f} MiB"])
    if (results.get("http") or {}).get("skipped"):
        rows.append(["HTTP API", f"skipped: {results['http']['skipped']}"])
    workers = results.get("workers") or {}
    for run in workers.get("runs", []):
        rows.append([f"{run['workers']} worker(s) x {run['intra_op_threads']} intra-op threads behind the broker @c16",
                     f"{run['images_per_s']:.1f} images/s, p50 {run['p50_ms']:.1f} ms, mean batch {run.get('mean_batch_size', 0):.1f}"
                     + (f"; others' CPU {run['others_cpu_pct']:.0f}%" if "others_cpu_pct" in run else "")])
    if workers.get("skipped"):
        rows.append(["workers compare", f"skipped: {workers['skipped']}"])
    return rows


TARGET_HEADERS = ("target", "threshold", "measured", "result", "detail")


def target_rows(targets: Sequence[Target]) -> list[list[object]]:
    return [[t.name, t.target, t.measured_text(), t.status, t.detail] for t in targets]


def console_report(results: dict, targets: Sequence[Target]) -> str:
    """Everything, as aligned plain-text tables."""
    parts = [f"warmserve bench: {model_label(results)}{' (quick)' if results.get('quick') else ''}"]
    if results.get("limit"):
        parts += ["", "The limit (in-process, same photo):", text_table(("what", "value"), limit_rows(results))]
    parts += ["", "Under load:", text_table(LOAD_HEADERS, load_rows(results))]
    if any(any(v is not None for v in row[2:]) for row in stage_rows(results)):
        parts += ["", "Where the time goes (medians, ms):", text_table(STAGE_HEADERS, stage_rows(results))]
    others = other_rows(results)
    if others:
        parts += ["", text_table(("what", "value"), others)]
    parts += ["", "Targets (ratios from this run):", text_table(TARGET_HEADERS, target_rows(targets))]
    return "\n".join(parts)


def markdown_report(results: dict, targets: Sequence[Target]) -> str:
    """The markdown file the README can paste."""
    machine = results.get("machine", {})
    lines = [
        f"### Benchmark: {model_label(results)}",
        "",
        f"One run of `{results.get('command', 'python -m model_backend.bench')}` on {machine.get('cpus', '?')} CPU cores "
        f"({machine.get('platform', '')}), load average before/after {machine.get('loadavg_before', '?')} / "
        f"{machine.get('loadavg_after', '?')}; photo: {results.get('photo', {}).get('description', '?')}.",
    ]
    if results.get("timing_only"):
        lines += ["", "**Random weights: timing only; the predictions of this run are meaningless.**"]
    if results.get("limit"):
        lines += ["", "The limit (in-process, same photo):", "", markdown_table(("what", "value"), limit_rows(results))]
    lines += ["", "Under load:", "", markdown_table(LOAD_HEADERS, load_rows(results))]
    if any(any(v is not None for v in row[2:]) for row in stage_rows(results)):
        lines += ["", "Where the time goes (medians, ms; *outside backend* = client latency - backend total, "
                  "*web tier* = HTTP latency - the dashboard's own backend round trip; CPU ms/req = CPU time of each process "
                  "during the run / requests answered):", "",
                  markdown_table(STAGE_HEADERS, stage_rows(results))]
    others = other_rows(results)
    if others:
        lines += ["", markdown_table(("what", "value"), others)]
    lines += ["", "Targets (each a ratio from this run):", "", markdown_table(TARGET_HEADERS, target_rows(targets)), ""]
    return "\n".join(lines)


# -- the plot (Pillow only) --------------------------------------------------------

PLOT_SIZE = (1100, 480)
COLORS = {"service": (31, 119, 180), "http": (255, 127, 14), "limit": (214, 39, 40), "axis": (60, 60, 60), "grid": (225, 225, 225)}


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: bitmap font only
        return ImageFont.load_default()


def _dashed_line(draw, start: tuple[float, float], end: tuple[float, float], fill, width: int = 2, dash: int = 8) -> None:
    (x0, y0), (x1, y1) = start, end
    length = math.hypot(x1 - x0, y1 - y0)
    steps = max(1, int(length // dash))
    for i in range(0, steps, 2):
        a, b = i / steps, min(1.0, (i + 1) / steps)
        draw.line([(x0 + (x1 - x0) * a, y0 + (y1 - y0) * a), (x0 + (x1 - x0) * b, y0 + (y1 - y0) * b)], fill=fill, width=width)


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


@dataclass
class _Panel:
    """One chart area: pixel box, x categories (concurrency levels), y range (linear from 0, or log)."""

    box: tuple[int, int, int, int]
    xs: Sequence[int]
    y_max: float
    y_min: float = 0.0
    log_scale: bool = False

    def x(self, concurrency: int) -> float:
        left, _, right, _ = self.box
        index = list(self.xs).index(concurrency)
        return left + (right - left) * (index + 0.5) / len(self.xs)

    def y(self, value: float) -> float:
        _, top, _, bottom = self.box
        value = min(max(value, self.y_min), self.y_max)
        if self.log_scale:
            fraction = math.log10(value / self.y_min) / math.log10(self.y_max / self.y_min)
        else:
            fraction = (value - self.y_min) / (self.y_max - self.y_min)
        return bottom - (bottom - top) * fraction

    def ticks(self) -> list[float]:
        if not self.log_scale:
            return [self.y_min + (self.y_max - self.y_min) * i / 5 for i in range(6)]
        return log_ticks(self.y_min, self.y_max)


def log_ticks(low: float, high: float) -> list[float]:
    """1-2-5 ticks from ``low`` to ``high`` (both powers of ten or 1-2-5 values)."""
    ticks, decade = [], 10 ** math.floor(math.log10(low))
    while decade <= high:
        ticks += [m * decade for m in (1, 2, 5) if low <= m * decade <= high]
        decade *= 10
    return ticks


def _log_bounds(values: Sequence[float]) -> tuple[float, float]:
    positive = [v for v in values if v and v > 0] or [1.0]
    low = 10 ** math.floor(math.log10(min(positive) * 0.9))
    target = max(positive) * 1.1
    high = next(t for t in log_ticks(low, 10 ** math.ceil(math.log10(target)) * 10) if t >= target)
    return low, high


def _draw_axes(draw, panel: _Panel, title: str, y_label: str, font, small) -> None:
    left, top, right, bottom = panel.box
    for value in panel.ticks():
        y = panel.y(value)
        draw.line([(left, y), (right, y)], fill=COLORS["grid"], width=1)
        draw.text((left - 8, y), f"{value:g}", fill=COLORS["axis"], font=small, anchor="rm")
    draw.rectangle(panel.box, outline=COLORS["axis"], width=1)
    for c in panel.xs:
        draw.text((panel.x(c), bottom + 8), str(c), fill=COLORS["axis"], font=small, anchor="mt")
    draw.text(((left + right) / 2, bottom + 28), "concurrency (requests in flight)", fill=COLORS["axis"], font=small, anchor="mt")
    draw.text(((left + right) / 2, top - 12), title, fill=(0, 0, 0), font=font, anchor="mb")
    draw.text((left, top - 2), y_label, fill=COLORS["axis"], font=small, anchor="lb")


def _draw_series(draw, panel: _Panel, runs: Sequence[dict], key: str, color, dashed: bool = False) -> None:
    points = [(panel.x(r["concurrency"]), panel.y(r[key])) for r in runs if r.get(key) is not None and r["concurrency"] in panel.xs]
    for a, b in zip(points, points[1:]):
        (_dashed_line(draw, a, b, color) if dashed else draw.line([a, b], fill=color, width=3))
    for x, y in points:
        draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=color)


def _legend(draw, origin: tuple[int, int], entries: Sequence[tuple[str, tuple, bool]], font) -> None:
    x, y = origin
    if entries:
        width = max(draw.textlength(label, font=font) for label, _, _ in entries)
        draw.rectangle([x - 6, y - 4, x + 40 + width, y + 18 * len(entries) + 2], fill="white", outline=COLORS["grid"])
    for label, color, dashed in entries:
        (_dashed_line(draw, (x, y + 7), (x + 28, y + 7), color) if dashed else draw.line([(x, y + 7), (x + 28, y + 7)], fill=color, width=3))
        draw.text((x + 34, y), label, fill=(0, 0, 0), font=font)
        y += 18


def render_png(results: dict, path: Path) -> Path:
    """Two panels: p50/p95 latency vs concurrency, and images/s vs concurrency with the pipeline limit."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", PLOT_SIZE, "white")
    draw = ImageDraw.Draw(image)
    font, small = _font(16), _font(13)
    series = {name: (results.get(name) or {}).get("runs", []) for name in ("service", "http")}
    all_runs = series["service"] + series["http"]
    xs = sorted({r["concurrency"] for r in all_runs}) or [1]
    limit_ips = (results.get("limit") or {}).get("pipeline_limit_ips")
    request_ms = (results.get("limit") or {}).get("request_p50_ms")

    latencies = [r.get(k) for r in all_runs for k in ("p50_ms", "p95_ms")] + [request_ms]
    latency_min, latency_max = _log_bounds([v for v in latencies if v])
    ips_max = _nice_max(max([r.get("images_per_s") or 0 for r in all_runs] + [limit_ips or 0]) * 1.1)
    left = _Panel((80, 100, 520, 400), xs, latency_max, latency_min, log_scale=True)
    right = _Panel((620, 100, 1060, 400), xs, ips_max)

    _draw_axes(draw, left, "Latency vs concurrency (log scale)", "ms", font, small)
    _draw_axes(draw, right, "Throughput vs concurrency", "images/s", font, small)
    legend_left = []
    for name, label in (("service", "service"), ("http", "HTTP API")):
        if series[name]:
            _draw_series(draw, left, series[name], "p50_ms", COLORS[name])
            _draw_series(draw, left, series[name], "p95_ms", COLORS[name], dashed=True)
            _draw_series(draw, right, series[name], "images_per_s", COLORS[name])
            legend_left += [(f"{label} p50", COLORS[name], False), (f"{label} p95", COLORS[name], True)]
    if request_ms:
        _dashed_line(draw, (left.box[0], left.y(request_ms)), (left.box[2], left.y(request_ms)), COLORS["limit"], width=1)
        legend_left.append((f"in-process request {request_ms:.1f} ms", COLORS["limit"], True))
    legend_right = [(name_label, COLORS[name], False) for name, name_label in (("service", "service"), ("http", "HTTP API")) if series[name]]
    if limit_ips:
        _dashed_line(draw, (right.box[0], right.y(limit_ips)), (right.box[2], right.y(limit_ips)), COLORS["limit"])
        legend_right.append((f"pipeline limit {limit_ips:.1f} images/s", COLORS["limit"], True))
    _legend(draw, (left.box[0] + 10, left.box[1] + 8), legend_left, small)
    # bottom right: throughput curves rise to the right and the limit line is near the top
    legend_width = max((draw.textlength(label, font=small) for label, _, _ in legend_right), default=0) + 40
    _legend(draw, (right.box[2] - 10 - legend_width, right.box[3] - 8 - 18 * len(legend_right)), legend_right, small)

    title = f"warmserve bench: {model_label(results)}"
    draw.text((PLOT_SIZE[0] / 2, 12), title, fill=(0, 0, 0), font=_font(20), anchor="mt")
    draw.text((PLOT_SIZE[0] / 2, 40), _monolith_caption(results), fill=COLORS["limit"], font=font, anchor="mt")
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")
    return path


def _monolith_caption(results: dict) -> str:
    monolith = results.get("monolith") or {}
    service1 = run_at(results.get("service"), 1)
    if monolith.get("median_wall_ms") is None:
        return "monolith: " + (f"skipped ({monolith['skipped']})" if monolith.get("skipped") else "not measured")
    text = f"monolith (fresh process per request): {monolith['median_wall_ms'] / 1000:.2f} s per image"
    if service1 and service1.get("p50_ms"):
        text += f" = {monolith['median_wall_ms'] / service1['p50_ms']:.0f}x the service p50 at c=1"
    return text
