"""The bench (tools.bench) with real processes: PNG figures (Plotly's engine drives Chromium), git's ignore list, and
one --quick run end to end.

The pure helpers (percentiles, summaries, targets, tables, HTML figures) are in tests/unit/test_bench.py.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PIL import Image

from tests.support.bench_results import fake_results
from tests.support.helpers import ROOT
from tools.bench import figures, plan, report, run
from tools.bench.targets import evaluate_targets


def test_tables_and_png(tmp_path):
    results = fake_results()
    targets = evaluate_targets(results)
    text = report.console_report(results, targets)
    assert "random weights, timing only" in text and "MISS" in text and "pipeline limit" in text
    markdown = report.markdown_report(results, targets)
    assert "| target | threshold | measured | result | detail |" in markdown
    assert markdown.count("| service (ZeroMQ) |") == 2
    assert "Random weights: timing only" in markdown
    path = figures.write_figure(results, tmp_path / "plot", "png")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == figures.PLOT_SIZE


def test_png_with_skipped_sections(tmp_path):
    results = fake_results(http={"skipped": "x"}, monolith={"skipped": "y"})
    assert figures.write_figure(results, tmp_path / "p", "png").stat().st_size > 0


def test_a_plain_run_writes_into_an_ignored_folder():
    args = run.build_parser().parse_args([])
    assert run.output_dir(args) == plan.LOCAL_RESULTS_DIR
    assert run.output_dir(run.build_parser().parse_args(["--update-results"])) == plan.RESULTS_DIR
    ignored = subprocess.run(["git", "check-ignore", "-q", str(plan.LOCAL_RESULTS_DIR / "bench-x.json")], cwd=ROOT)
    assert ignored.returncode == 0, "results/local/ must be ignored by git"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_quick_bench_writes_json_markdown_and_png(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "tools.bench", "--quick", "--requests", "3", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=280,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    assert "Targets (ratios from this run)" in completed.stdout
    results = json.loads((tmp_path / "bench-efficientnet-lite0.json").read_text())
    assert results["quick"] is True and results["timing_only"] is False
    assert results["limit"]["pipeline_limit_ips"] > 0
    assert [r["concurrency"] for r in results["service"]["runs"]] == list(plan.SERVICE_CONCURRENCY)
    assert all(r["errors"] == 0 for r in results["service"]["runs"])
    assert results["service"]["rss_mb"] > 0
    assert results["monolith"]["median_wall_ms"] > 0
    assert [r["concurrency"] for r in results["http"]["runs"]] == list(plan.HTTP_CONCURRENCY)
    assert [(r["workers"], r["errors"]) for r in results["workers"]["runs"]] == [(1, 0), (2, 0)]
    assert len(results["targets"]) == 7
    assert "| target |" in (tmp_path / "bench-efficientnet-lite0.md").read_text()
    with Image.open(tmp_path / "bench-efficientnet-lite0.png") as image:
        assert image.format == "PNG"
    assert (tmp_path / "logs" / "bench-efficientnet-lite0" / "backend.log").exists()
