"""The bench's command line and the whole run: every section in order, then the targets, tables and files.

    python -m tools.bench [--model efficientnet-lite0|resnet50] [--weights random] [--quick]
                          [--out DIR | --update-results] [--requests N] [--skip-monolith] [--skip-http]
                          [--skip-paired] [--skip-tf-service] [--skip-workers] [--figure auto|png|html] [--from-json RESULTS.json]

A plain run writes ``bench-<model>.json``, ``.md`` and the figure (``.png``, or
``.html`` where no PNG engine runs) into ``results/local/``, which git ignores,
so running the bench never dirties the checkout; ``--update-results`` writes
the committed files in ``results/`` instead. Process logs go to
``OUT/logs/bench-<model>/``. ``--from-json`` measures nothing: it redraws the
tables and the figure of an earlier run.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import platform
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tools.processes import BACKEND_READY, ProcessError, backend_args

from . import report
from .figures import FIGURE_FORMATS, write_figure
from .limit import limit_main
from .meter import loadavg, memory_mb, quietest
from .plan import (JPEG_QUALITY, LOCAL_RESULTS_DIR, RESULTS_DIR, TF_SERVICE_CONCURRENCY, BenchError, Plan, make_plan, output_stem,
                   photo_jpeg)
from .processes import running
from .paired import bench_paired
from .sections import (Dashboard, bench_http, bench_limit, bench_monolith, bench_service, bench_startup, bench_workers,
                       dashboard_running)
from .stats import measured_limit
from .targets import Target, evaluate_targets, targets_as_dicts

log = logging.getLogger("tools.bench")


def model_cli_args(args: argparse.Namespace) -> list[str]:
    out = ["--model", args.model]
    if args.weights:
        out += ["--weights", args.weights]
    return out


def run_header(args: argparse.Namespace, plan: Plan, photo: bytes) -> dict:
    from PIL import Image

    width, height = Image.open(io.BytesIO(photo)).size
    return {
        "schema": 2,
        "command": " ".join(["python -m tools.bench", *sys.argv[1:]]),
        "model": args.model,
        "weights": args.weights or "default (pretrained)",
        "timing_only": args.weights == "random",
        "quick": plan.quick,
        "plan": plan.__dict__,
        "photo": {"description": f"skimage.data.chelsea() {width}x{height} JPEG q{JPEG_QUALITY}, {len(photo)} bytes", "bytes": len(photo)},
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(terse=True),
            "python": platform.python_version(),
            "loadavg_before": loadavg(),
        },
    }


def run_bench(args: argparse.Namespace, out_dir: Path) -> dict:
    """Every section in order; returns the results dict (targets not yet included)."""
    plan = make_plan(args.quick, args.requests)
    log_dir = out_dir / "logs" / output_stem(args.model)
    log_dir.mkdir(parents=True, exist_ok=True)
    model_args = model_cli_args(args)
    photo = photo_jpeg()
    results = run_header(args, plan, photo)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="warmserve-bench-") as tmp:
        work_dir = Path(tmp)
        photo_path = work_dir / "chelsea-q90.jpg"
        photo_path.write_bytes(photo)
        results["limit"] = quietest("the limit", lambda: bench_limit(model_args, plan.quick, log_dir), plan.attempts)
        limit = results["limit"]
        log.info("Limit [%s]: request p50 %.2f ms, pipeline limit %.1f images/s (%s); arithmetic %.1f images/s (best forward: "
                 "%d thread(s), batch %d)", limit["runtime"], limit["request_p50_ms"], *measured_limit(limit),
                 limit["pipeline_limit_ips"], limit["best_forward"]["threads"], limit["best_forward"]["batch"])
        results["monolith"] = {"skipped": "--skip-monolith"} if args.skip_monolith else bench_monolith(model_args, photo_path, plan.monolith_runs)
        results["startup"] = bench_startup(model_args, plan.start_runs, log_dir, plan.attempts)
        with running("backend", backend_args(model_args, "--bind", "tcp://127.0.0.1:*"), log_dir) as backend:
            address = backend.wait_for(BACKEND_READY).group(1)
            results["service"] = bench_service(address, photo, plan, backend)
            skip_http = "--skip-http" if args.skip_http else None
            with dashboard_running(skip_http, address, log_dir, work_dir, args.dashboard_threads) as dashboard:
                results["http"] = bench_http(backend, dashboard, photo, plan, args.dashboard_threads)
                results["http"].setdefault("runtime", results["service"]["runtime"])
                results["service"]["rss_after_http_mb"] = memory_mb(backend.pid)["rss_mb"]
                if args.skip_paired:
                    results["paired"] = {"skipped": "--skip-paired"}
                else:
                    http_up = isinstance(dashboard, Dashboard) and not results["http"].get("skipped")
                    results["paired"] = bench_paired(
                        model_args, photo, plan, limit, backend, address, dashboard.url if http_up else None,
                        results["http"].get("skipped", ""), log_dir, work_dir, {"dashboard": dashboard.child.pid} if http_up else None)
        if args.skip_tf_service:
            results["service_tf"] = {"skipped": "--skip-tf-service"}
        else:
            with running("backend-tensorflow", backend_args(model_args, "--bind", "tcp://127.0.0.1:*", "--runtime", "tensorflow"), log_dir) as backend:
                address = backend.wait_for(BACKEND_READY).group(1)
                results["service_tf"] = bench_service(address, photo, plan, backend, TF_SERVICE_CONCURRENCY)
    results["workers"] = bench_workers(model_args, photo, plan, log_dir) if not args.skip_workers else {"skipped": "--skip-workers"}
    results["machine"]["loadavg_after"] = loadavg()
    results["duration_s"] = round(time.perf_counter() - started, 1)
    return results


def write_outputs(results: dict, targets: Sequence[Target], out_dir: Path, figure_format: str = "auto") -> dict[str, Path]:
    """``OUT/bench-<model>.json`` and ``.md``, and the figure (``.png``, or ``.html`` where no PNG engine runs)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / output_stem(results["model"])
    paths = {"json": stem.with_suffix(".json"), "md": stem.with_suffix(".md")}
    paths["json"].write_text(json.dumps(results, indent=2) + "\n")
    paths["md"].write_text(report.markdown_report(results, targets))
    paths["figure"] = write_figure(results, stem, figure_format)
    return paths


def output_dir(args: argparse.Namespace) -> Path:
    """``--out``, or ``results/`` with ``--update-results``, or the ignored ``results/local/``."""
    if args.out is not None:
        return args.out
    return RESULTS_DIR if args.update_results else LOCAL_RESULTS_DIR


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description="The benchmark: how close the served model gets "
                                     "to its in-process limit, in one run on one machine.")
    parser.add_argument("--model", default="efficientnet-lite0", help="efficientnet-lite0 (default) or resnet50")
    parser.add_argument("--weights", help="'random' for timing-only random weights (resnet50 offline), or a weights file")
    parser.add_argument("--quick", action="store_true", help="few requests and repetitions (a smoke run, about a minute)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--out", type=Path, help="where bench-<model>.json/.md/.png and logs/ go (default results/local/, ignored by git)")
    where.add_argument("--update-results", action="store_true", help="write the committed results in results/ instead")
    parser.add_argument("--requests", type=int, help="requests at concurrency 1 (twice as many above) in each section; default 200, 24 with "
                        "--quick (the paired rounds keep their own counts)")
    parser.add_argument("--skip-monolith", action="store_true", help="do not run the monolith")
    parser.add_argument("--skip-http", action="store_true", help="do not start the dashboard / measure the HTTP API")
    parser.add_argument("--dashboard-threads", type=int, help="waitress threads for the dashboard (default: the dashboard's own default)")
    parser.add_argument("--skip-paired", action="store_true", help="do not run the paired rounds (the ratio targets then use the "
                        "sections' figures, taken minutes apart)")
    parser.add_argument("--skip-tf-service", action="store_true", help="do not measure a second backend on --runtime tensorflow")
    parser.add_argument("--skip-workers", action="store_true", help="do not compare 1 vs 2 workers behind the broker at c=16")
    parser.add_argument("--figure", choices=FIGURE_FORMATS, default="auto",
                        help="png (needs kaleido and a Chrome), html (self-contained), auto (default: png, else html)")
    parser.add_argument("--from-json", type=Path, metavar="RESULTS", help="measure nothing: redraw the tables and figure of RESULTS")
    parser.add_argument("--limit-only", action="store_true", help="only the in-process limit (what the bench runs in a child process)")
    parser.add_argument("--json", action="store_true", help="with --limit-only: print the result as one JSON line")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO (default), WARNING")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for chatty in ("choreographer", "kaleido", "logistro"):  # the PNG engine logs every browser step at INFO
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLogger().level))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.from_json is None:  # SIGTERM unwinds like Ctrl-C, so every child process is stopped on the way out.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    out_dir = output_dir(args)
    try:
        if args.limit_only:
            return limit_main(args)
        results = json.loads(args.from_json.read_text()) if args.from_json else run_bench(args, out_dir)
    except (BenchError, ProcessError, ValueError, OSError) as exc:
        log.error("%s", exc)
        return 1
    targets = evaluate_targets(results)
    results["targets"] = targets_as_dicts(targets)
    paths = write_outputs(results, targets, out_dir, args.figure)
    print(report.console_report(results, targets))
    source = f" from {args.from_json}" if args.from_json else f" in {results['duration_s']:.0f} s"
    print("\nWrote " + ", ".join(str(p) for p in paths.values()) + source)
    return 0
