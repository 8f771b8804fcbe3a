"""The bench's text: console tables and the markdown report the README pastes.

Nothing here starts a process, imports TensorFlow or measures anything: it
turns a results dict (built by :mod:`tools.bench.run`) and its
:class:`~tools.bench.targets.Target` rows into text. The figure is drawn by
:mod:`tools.bench.figures`; :mod:`tools.bench.run` writes the files.

The results dict (also the JSON file) looks like::

    {"model": ..., "weights": ..., "timing_only": bool, "quick": bool,
     "limit": {"runtime", "runtime_reason", "cores", "request_p50_ms", "decode_preprocess_ms",
               "camera_decode": {"p50_ms", "bytes"} or {"skipped"},
               "forward_vs_plain": {"backend_ms", "plain_ms", "ratio", "pairs"} or {"skipped"},
               "forward_table": [{"threads", "batch", "ms_per_image"}], "best_forward": {...},
               "pipeline_limit_ips", "pipeline_limit_definition", ...},
     "monolith": {"runtime": "tensorflow", "median_wall_ms", "stages_ms": {...}} or {"skipped": reason},
     "startup": {"runtime", "first_start_s", "starts_s": [...], "median_s"},
     "service": {"runtime", "runtime_reason", "runs": [{"concurrency", "p50_ms", "p95_ms", "p99_ms", "images_per_s",
                 "mean_batch_size", ...}], "rss_mb", "rss_after_http_mb"},
     "http": {"runtime", "runs": [...], "rss_mb"} or {"skipped": reason},
     "service_tf": {"runtime": "tensorflow", "runs": [...], "rss_mb"} or {"skipped": reason},
     "paired": {"runtime", "rounds": [{"round", "order", "figures": {...}, "comparisons": {...}, "others_cpu_pct"}],
                "medians": {...}, "ranges": {comparison: [min, max]}, "per_round": {...}, "skipped_steps": {step: reason},
                "limit_config", "definition", ...} or {"skipped": reason}   (tools/bench/paired.py),
     "workers": {"runs": [{"workers", "intra_op_threads", "runtime", ...}]} or {"skipped": reason},
     "targets": [{"name", "target", "measured", "status", "detail", "extra"}]}
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from model_backend.protocol import STAGES

from .plan import NOISY_PCT
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


LOAD_HEADERS = ("path [runtime]", "concurrency", "requests", "errors", "p50 ms", "p95 ms", "p99 ms", "images/s", "mean batch",
                "others' CPU %")
#: the load runs, in the order they are shown: (section, its list of runs, name); the runtime is added from the results
LOAD_SECTIONS = (("service", "runs", "service (ZeroMQ)"), ("service_tf", "runs", "service (ZeroMQ)"), ("http", "runs", "HTTP API"),
                 ("http", "png_runs", "HTTP API, chelsea PNG"))


def section_label(results: dict, section: str, label: str) -> str:
    """``service (ZeroMQ) [litert]``: a load section's name with the runtime that served it."""
    return f"{label} [{(results.get(section) or {}).get('runtime') or '?'}]"


def load_rows(results: dict) -> list[list[object]]:
    rows = []
    for section, key, label in LOAD_SECTIONS:
        for run in (results.get(section) or {}).get(key, []):
            rows.append([
                section_label(results, section, label), run["concurrency"], run["requests"], run["errors"], run.get("p50_ms"),
                run.get("p95_ms"), run.get("p99_ms"), run.get("images_per_s"), run.get("mean_batch_size"), run.get("others_cpu_pct"),
            ])
    return rows


STAGE_HEADERS = ("path [runtime]", "concurrency", *("backend total" if stage == "total" else stage for stage in STAGES),
                 "outside backend", "web tier", "CPU ms/req: backend", "dashboard", "load generator")


def stage_rows(results: dict) -> list[list[object]]:
    """Where the time goes: medians of the backend's own stage timings, and what lies outside them (ms)."""
    rows = []
    for section, key, label in LOAD_SECTIONS:
        for run in (results.get(section) or {}).get(key, []):
            stages = run.get("backend_stages_ms") or {}
            cpu = run.get("cpu_ms_per_request") or {}
            rows.append([section_label(results, section, label), run["concurrency"], *(stages.get(s) for s in STAGES),
                         run.get("outside_backend_ms"), run.get("web_tier_ms"), cpu.get("backend"), cpu.get("dashboard"), cpu.get("bench")])
    return rows


def _ms(value: object, suffix: str = " ms") -> str:
    return "-" if not isinstance(value, (int, float)) else f"{value:.2f}{suffix}"


def limit_rows(results: dict) -> list[list[object]]:
    limit = results.get("limit") or {}
    if not limit:
        return []
    runtime = limit.get("runtime") or "?"
    camera, versus, best = limit.get("camera_decode") or {}, limit.get("forward_vs_plain") or {}, limit.get("best_forward") or {}
    rows = [
        ["backend model (load_classifier, backend defaults)", f"{runtime}: {limit.get('runtime_reason', '')}"],
        [f"in-process request p50 [{runtime}] (decode + preprocess + forward @1)", _ms(limit.get("request_p50_ms"))],
        ["decode + preprocess p50 (photo)", _ms(limit.get("decode_preprocess_ms"))],
        ["decode + preprocess p50 (12 MP camera JPEG)",
         f"skipped: {camera['skipped']}" if camera.get("skipped") else _ms(camera.get("p50_ms"))],
        [f"forward @1, backend model [{runtime}]", _ms(limit.get("forward_batch1_ms"))],
        ["forward @1, plain LiteRT interpreter (all cores, interleaved with the backend's)",
         f"skipped: {versus['skipped']}" if versus.get("skipped") else f"{_ms(versus.get('plain_ms'))} (backend/plain {versus.get('ratio', 0):.3f})"],
    ]
    if best:
        rows.append(["best forward (fewest core-ms per image)",
                     f"{best['threads']} thread(s), batch {best['batch']}: {best['ms_per_image']:.2f} ms per image = "
                     f"{best.get('core_ms_per_image', best['ms_per_image'] * best['threads']):.2f} core-ms"])
    busy = limit.get("busy_limit") or {}
    for config in busy.get("configs", []):
        rounds = ", ".join(f"{rate:.0f}" for rate in config.get("rounds_images_per_s", []))
        cost = f", {config['core_ms_per_image']:.2f} core-ms per image" if config.get("core_ms_per_image") else ""
        rows.append([f"all cores busy: {config['label']} (decode + preprocess + forward)",
                     f"{_rate(config.get('images_per_s'))}{cost} (rounds: {rounds})"])
    if busy.get("skipped"):
        rows.append(["pipeline limit, measured (all cores busy)", f"skipped: {busy['skipped']}"])
    elif busy.get("images_per_s"):
        rows.append([f"pipeline limit, measured ({busy.get('processes', '?')} cores busy; the service is held to it)",
                     f"{_rate(busy['images_per_s'])} ({busy.get('best', '?')}; median of {busy.get('rounds', '?')} rounds of "
                     f"{busy.get('window_s', 0):g} s)"])
    if busy.get("cpu_limit_ips"):
        rows.append([f"pipeline limit from the CPU cost, all cores busy ({busy.get('processes', '?')} cores x 1000 / core-ms per image)",
                     f"{_rate(busy['cpu_limit_ips'])} ({busy.get('cheapest', '?')}: {busy['cheapest_core_ms_per_image']:.2f} core-ms "
                     f"per image; holds when other processes take CPU)"])
    label = "pipeline limit, arithmetic (parts timed alone, " if busy.get("images_per_s") else "pipeline limit ("
    rows.append([f"{label}{limit.get('cores', '?')} cores)", _rate(limit.get("pipeline_limit_ips"))])
    if "others_cpu_pct" in limit:
        rows.append(["other processes' CPU meanwhile", f"{limit['others_cpu_pct']:.0f}% of the machine"])
    return rows


def _rate(value: object) -> str:
    return f"{value:.1f} images/s" if isinstance(value, (int, float)) and value else "-"


def forward_title(results: dict) -> str:
    """What the forward table timed: plain LiteRT interpreters on the backend's flatbuffer, or the TensorFlow model itself."""
    runtime = (results.get("limit") or {}).get("runtime") or "?"
    engine = ("plain LiteRT interpreters on the backend's flatbuffer" if runtime == "litert"
              else f"the backend's model on {runtime}, all cores only")
    return f"Forward pass, wall ms per image by threads and batch size ({engine}):"


def forward_table_rows(results: dict) -> tuple[list[str], list[list[object]]]:
    """Forward wall ms per image, one row per thread count, one column per batch size."""
    table = (results.get("limit") or {}).get("forward_table") or []
    batches = sorted({row["batch"] for row in table})
    headers = ["threads \\ batch", *(str(b) for b in batches)]
    rows = []
    for threads in sorted({row["threads"] for row in table}):
        cells = {row["batch"]: row["ms_per_image"] for row in table if row["threads"] == threads}
        rows.append([threads, *(cells.get(b) for b in batches)])
    return headers, rows


def other_rows(results: dict) -> list[list[object]]:
    rows: list[list[object]] = []
    monolith = results.get("monolith") or {}
    if monolith.get("skipped"):
        rows.append(["monolith", f"skipped: {monolith['skipped']}"])
    elif monolith:
        stages = ", ".join(f"{k} {v:.0f}" for k, v in monolith.get("stages_ms", {}).items())
        noise = f"; others' CPU {monolith['others_cpu_pct']:.0f}%" if "others_cpu_pct" in monolith else ""
        rows.append([f"monolith [{monolith.get('runtime') or '?'}] per request (fresh process, median of {monolith['runs']})",
                     f"{monolith['median_wall_ms']:.0f} ms ({stages} ms{noise})"])
    startup = results.get("startup") or {}
    if startup.get("starts_s"):
        rows.append([f"backend [{startup.get('runtime') or '?'}] start to ready (spawn to ready line)",
                     f"first {startup['first_start_s']:.2f} s, then {', '.join(f'{s:.2f}' for s in startup['starts_s'])} s "
                     f"(median {startup['median_s']:.2f} s)"])
    for section, label in (("service", "backend"), ("service_tf", "backend"), ("http", "dashboard")):
        data = results.get(section) or {}
        if data.get("rss_mb") is not None:
            runtime = f" (serving {data.get('runtime', '?')})" if section != "http" else ""
            after_http = f"; {data['rss_after_http_mb']:.0f} MiB after the HTTP API load" if data.get("rss_after_http_mb") else ""
            rows.append([f"{label}{runtime} RSS after its load", f"{data['rss_mb']:.0f} MiB{after_http}"])
    for section in ("service", "service_tf"):
        data = results.get(section) or {}
        if data.get("execution"):
            options = f"; up to {data['pool_batch']} waiting requests per forward pass" if data.get("pool_batch") else ""
            rows.append([f"service [{data.get('runtime', '?')}] execution (backend's info)",
                         f"{data['execution']}: {data.get('execution_reason', '')}{options}"])
    for section, label in (("http", "HTTP API"), ("service_tf", "service [tensorflow]")):
        if (results.get(section) or {}).get("skipped"):
            rows.append([label, f"skipped: {results[section]['skipped']}"])
    workers = results.get("workers") or {}
    for run in workers.get("runs", []):
        execution = f", {run['execution']}" if run.get("execution") else ""
        rows.append([f"{run['workers']} worker(s) [{run.get('runtime', '?')}{execution}] x {run['intra_op_threads']} threads behind the broker @c16",
                     f"{run['images_per_s']:.1f} images/s, p50 {run['p50_ms']:.1f} ms, mean batch {run.get('mean_batch_size', 0):.1f}"
                     + (f"; others' CPU {run['others_cpu_pct']:.0f}%" if "others_cpu_pct" in run else "")])
    if workers.get("skipped"):
        rows.append(["workers compare", f"skipped: {workers['skipped']}"])
    return rows


#: the paired rounds' table: the figures of each step (a-f), then each round's comparisons
PAIRED_FIGURES = (("a in-process p50 ms", "inprocess_p50_ms"), ("b service c1 p50 ms", "service_c1_p50_ms"),
                  ("c HTTP c1 p50 ms", "http_c1_p50_ms"), ("d service c16 images/s", "service_c16_ips"),
                  ("e HTTP c16 images/s", "http_c16_ips"), ("f limit images/s", "limit_ips"))
PAIRED_COMPARISONS = (("b / a", "service_c1_ratio", "{:.3f}"), ("b - a ms", "service_c1_extra_ms", "{:+.2f}"),
                      ("c - a ms", "http_c1_extra_ms", "{:+.2f}"), ("d / f", "service_c16_vs_limit", "{:.3f}"),
                      ("e / d", "http_c16_vs_service", "{:.3f}"), ("d / f, CPU per image", "service_c16_cpu_vs_limit", "{:.3f}"))
PAIRED_HEADERS = ("round", "order", *(label for label, _ in PAIRED_FIGURES), *(label for label, _, _ in PAIRED_COMPARISONS),
                  "others' CPU %")


def paired_rows(results: dict) -> list[list[object]]:
    """One row per paired round (its order, figures, comparisons), then the medians and the comparisons' ranges."""
    paired = results.get("paired") or {}
    if not paired.get("rounds"):
        return []

    def comparisons(values: dict) -> list[object]:
        return [fmt.format(values[key]) if values.get(key) is not None else None for _, key, fmt in PAIRED_COMPARISONS]

    rows: list[list[object]] = []
    for run in paired["rounds"]:
        figures = run.get("figures") or {}
        rows.append([run["round"], run.get("order", ""), *(figures.get(key) for _, key in PAIRED_FIGURES),
                     *comparisons(run.get("comparisons") or {}), run.get("others_cpu_pct")])
    medians, ranges = paired.get("medians") or {}, paired.get("ranges") or {}
    rows.append(["median", "", *(medians.get(key) for _, key in PAIRED_FIGURES), *comparisons(medians), paired.get("others_cpu_pct")])
    rows.append(["range", "", *([None] * len(PAIRED_FIGURES)),
                 *(f"{fmt.format(ranges[key][0])}..{fmt.format(ranges[key][1])}" if key in ranges else None
                   for _, key, fmt in PAIRED_COMPARISONS), None])
    return rows


def paired_title(results: dict) -> str:
    """The paired table's title, with the steps left out and why (or why the paired rounds did not run)."""
    paired = results.get("paired") or {}
    if paired.get("skipped"):
        return f"Paired rounds: skipped: {paired['skipped']}."
    left_out = "; ".join(f"{step} left out: {why}" for step, why in (paired.get("skipped_steps") or {}).items())
    took = f"; {paired['seconds']:.0f} s in all" if paired.get("seconds") else ""
    return (f"Paired rounds [{paired.get('runtime', '?')}] (the four ratio targets; a-f as below, {paired.get('requests_c1', '?')} "
            f"requests at c=1 and {paired.get('requests_concurrent', '?')} at c={paired.get('concurrency', 16)} per step{took}"
            + (f"; {left_out}" if left_out else "") + "):")


EXTRA_ROWS = ("the four ratio targets from the sections' figures, taken minutes apart, the HTTP API's tail, "
              "issue 9's absolute aims for the chelsea PNG, the service against the arithmetic limit and "
              "its CPU per image against the busy-cores limit's, persistent process vs faster runtime")
TARGET_HEADERS = ("target", "threshold", "measured", "result", "detail")


def target_rows(targets: Sequence[Target], extra: bool = False) -> list[list[object]]:
    """The issue's targets (``extra=False``) or the rows only reported (``extra=True``)."""
    return [[t.name, t.target, t.measured_text(), t.status, t.detail] for t in targets if t.extra == extra]


def disturbed(results: dict, threshold_pct: float = NOISY_PCT) -> list[str]:
    """``the limit (86%)``, ``service [litert] c=16 (82%)``: the measurements other processes disturbed, with their CPU share."""
    found = []
    for section, label in (("limit", "the limit"), ("monolith", "the monolith"), ("startup", "backend starts")):
        pct = (results.get(section) or {}).get("others_cpu_pct")
        if pct is not None and pct > threshold_pct:
            found.append(f"{label} ({pct:.0f}%)")
    for section, key, label in LOAD_SECTIONS:
        for run in (results.get(section) or {}).get(key, []):
            if (run.get("others_cpu_pct") or 0) > threshold_pct:
                found.append(f"{section_label(results, section, label)} c={run['concurrency']} ({run['others_cpu_pct']:.0f}%)")
    for run in (results.get("workers") or {}).get("runs", []):
        if (run.get("others_cpu_pct") or 0) > threshold_pct:
            found.append(f"{run['workers']} worker(s) ({run['others_cpu_pct']:.0f}%)")
    paired_pct = (results.get("paired") or {}).get("others_cpu_pct")
    if paired_pct is not None and paired_pct > threshold_pct:
        found.append(f"the paired rounds (median {paired_pct:.0f}%)")
    return found


def disturbance_note(results: dict) -> list[str]:
    """A warning line above the targets when other processes took a noticeable share of the machine during some measurement."""
    found = disturbed(results)
    if not found:
        return []
    return [f"Disturbed: other processes used more than {NOISY_PCT:g}% of the machine's CPU during "
            + ", ".join(found) + "; those figures (and the verdicts built on them) are not this machine's best."]


def definition(results: dict) -> str:
    return (results.get("limit") or {}).get("pipeline_limit_definition") or ""


def generator_lines(results: dict) -> list[str]:
    """What sent the load of each section (results without it, from before the lean generator: nothing)."""
    sections = (("service", "service"), ("service_tf", "service [tensorflow]"), ("http", "HTTP API"))
    said = [f"{label}: {(results.get(key) or {}).get('load_generator')}" for key, label in sections
            if (results.get(key) or {}).get("load_generator")]
    return [f"Load generator ({'; '.join(said)}; the service's row 'via BackendClient' uses the client library from 16 threads)."] if said else []


def console_report(results: dict, targets: Sequence[Target]) -> str:
    """Everything, as aligned plain-text tables."""
    parts = [f"warmserve bench: {model_label(results)}{' (quick)' if results.get('quick') else ''}"]
    if results.get("limit"):
        parts += ["", "The limit (in-process, same photo):", text_table(("what", "value"), limit_rows(results))]
        headers, rows = forward_table_rows(results)
        if rows:
            parts += ["", forward_title(results), text_table(headers, rows)]
        if definition(results):
            parts += [definition(results)]
    parts += ["", "Under load:", text_table(LOAD_HEADERS, load_rows(results))] + generator_lines(results)
    if any(any(v is not None for v in row[2:]) for row in stage_rows(results)):
        parts += ["", "Where the time goes (medians, ms):", text_table(STAGE_HEADERS, stage_rows(results))]
    others = other_rows(results)
    if others:
        parts += ["", text_table(("what", "value"), others)]
    parts += ["", "Targets (issue 9; each from this run):", *disturbance_note(results), text_table(TARGET_HEADERS, target_rows(targets))]
    if target_rows(targets, extra=True):
        parts += ["", f"Also reported (not targets: {EXTRA_ROWS}):", text_table(TARGET_HEADERS, target_rows(targets, extra=True))]
    if results.get("paired"):
        parts += ["", paired_title(results)]
        if paired_rows(results):
            parts += [text_table(PAIRED_HEADERS, paired_rows(results)), results["paired"].get("definition", "")]
    return "\n".join(parts)


def markdown_report(results: dict, targets: Sequence[Target]) -> str:
    """The markdown file the README can paste."""
    machine = results.get("machine", {})
    lines = [
        f"### Benchmark: {model_label(results)}",
        "",
        f"One run of `{results.get('command', 'python -m tools.bench')}` on {machine.get('cpus', '?')} CPU cores "
        f"({machine.get('platform', '')}), load average before/after {machine.get('loadavg_before', '?')} / "
        f"{machine.get('loadavg_after', '?')}; photo: {results.get('photo', {}).get('description', '?')}"
        + (f"; {results['duration_s']:.0f} s." if results.get("duration_s") else "."),
    ]
    if results.get("timing_only"):
        lines += ["", "**Random weights: timing only; the predictions of this run are meaningless.**"]
    lines += ["", "Targets (issue 9; each from this run; [runtime] = the runtime that served that side):", ""]
    lines += [f"**{line}**" for line in disturbance_note(results)] + ([""] if disturbance_note(results) else [])
    lines += [markdown_table(TARGET_HEADERS, target_rows(targets))]
    if target_rows(targets, extra=True):
        lines += ["", f"Also reported (not targets: {EXTRA_ROWS}):", "",
                  markdown_table(TARGET_HEADERS, target_rows(targets, extra=True))]
    if results.get("paired"):
        lines += ["", paired_title(results)]
        if paired_rows(results):
            lines += ["", markdown_table(PAIRED_HEADERS, paired_rows(results)), "", results["paired"].get("definition", "") + "."]
    if results.get("limit"):
        lines += ["", "The limit (in-process, same photo):", "", markdown_table(("what", "value"), limit_rows(results))]
        headers, rows = forward_table_rows(results)
        if rows:
            lines += ["", forward_title(results), "", markdown_table(headers, rows)]
        if definition(results):
            lines += ["", definition(results) + "."]
    generators = generator_lines(results)
    lines += ["", "Under load:", "", markdown_table(LOAD_HEADERS, load_rows(results))] + (["", *generators] if generators else [])
    if any(any(v is not None for v in row[2:]) for row in stage_rows(results)):
        lines += ["", "Where the time goes (medians, ms; *outside backend* = client latency - backend total, "
                  "*web tier* = HTTP latency - the dashboard's own backend round trip; CPU ms/req = CPU time of each process "
                  "during the run / requests answered):", "",
                  markdown_table(STAGE_HEADERS, stage_rows(results))]
    others = other_rows(results)
    if others:
        lines += ["", markdown_table(("what", "value"), others)]
    lines.append("")
    return "\n".join(lines)
