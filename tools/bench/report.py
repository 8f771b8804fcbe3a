"""The bench's text: console tables and the markdown report the README pastes.

Nothing here starts a process, imports TensorFlow or measures anything: it
turns a results dict (built by :mod:`tools.bench.run`) and its
:class:`~tools.bench.targets.Target` rows into text. The figure is drawn by
:mod:`tools.bench.figures`; :mod:`tools.bench.run` writes the files.

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
from collections.abc import Sequence

from model_backend.protocol import STAGES

from .targets import Target


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


STAGE_HEADERS = ("path", "concurrency", *("backend total" if stage == "total" else stage for stage in STAGES), "outside backend",
                 "web tier", "CPU ms/req: backend", "dashboard", "load generator")


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
        f"One run of `{results.get('command', 'python -m tools.bench')}` on {machine.get('cpus', '?')} CPU cores "
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

