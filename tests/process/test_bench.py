"""The bench (tools.bench) with real processes: PNG figures (Plotly's engine drives Chromium), git's ignore list, and
one --quick run end to end (every section, the paired rounds and the targets).

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
from tools.bench.paired import COMPARISONS, CPU_FIGURES, FIGURE_OF, HALVES, letters, round_order
from tools.bench.targets import PAIRED_KEYS, TARGET_KEYS, evaluate_targets


def test_tables_and_png(tmp_path):
    results = fake_results(model="resnet50", weights="random", timing_only=True)
    targets = evaluate_targets(results)
    text = report.console_report(results, targets)
    assert "random weights, timing only" in text and "MISS" in text and "pipeline limit" in text
    markdown = report.markdown_report(results, targets)
    assert markdown.count("| target | threshold | measured | result | detail |") == 2  # the targets, then the extra rows
    assert markdown.count("| service (ZeroMQ) [litert] |") == 2  # c=1 and c=16 (no stage table: no stage timings)
    assert markdown.count("| service (ZeroMQ) [tensorflow] |") == 2
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
def test_quick_bench_writes_every_section_and_target(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "tools.bench", "--quick", "--requests", "3", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=280,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    assert "Targets (issue 9; each from this run)" in completed.stdout
    results = json.loads((tmp_path / "bench-efficientnet-lite0.json").read_text())
    assert results["quick"] is True and results["timing_only"] is False
    limit = results["limit"]
    assert limit["runtime"] == "litert" and limit["pipeline_limit_ips"] > 0
    assert limit["forward_vs_plain"]["ratio"] > 0 and limit["camera_decode"]["bytes"] > 3_000_000
    assert {(row["threads"], row["batch"]) for row in limit["forward_table"]} == {
        (threads, batch) for threads in sorted({1, limit["cores"]}) for batch in plan.BATCH_SIZES}
    busy = limit["busy_limit"]  # the limit measured with every core busy: one child process per core, counted together
    assert busy["processes"] == limit["cores"] and busy["images_per_s"] > 0 and busy["core_ms_per_image"] > 0
    assert busy["configs"][0]["label"] == f"{limit['cores']} process{'es' if limit['cores'] > 1 else ''} x 1 thread, batch 1"
    assert all(row["images_per_s"] > 0 for row in busy["configs"]), busy["configs"]
    assert results["startup"]["runtime"] == "litert" and len(results["startup"]["starts_s"]) == 1
    assert results["service"]["runtime"] == "litert" and results["service"]["rss_mb"] > 0
    assert [r["concurrency"] for r in results["service"]["runs"]] == list(plan.SERVICE_CONCURRENCY)
    assert results["service_tf"]["runtime"] == "tensorflow"
    assert [r["concurrency"] for r in results["service_tf"]["runs"]] == list(plan.TF_SERVICE_CONCURRENCY)
    assert results["http"]["runtime"] == "litert"
    assert [r["concurrency"] for r in results["http"]["runs"]] == list(plan.HTTP_CONCURRENCY)
    assert [(r["concurrency"], r["errors"]) for r in results["http"]["png_runs"]] == [(c, 0) for c in plan.HTTP_CONCURRENCY]
    for section in ("service", "service_tf", "http"):
        assert all(r["errors"] == 0 for r in results[section]["runs"]), section
    assert results["monolith"]["runtime"] == "tensorflow" and results["monolith"]["median_wall_ms"] > 0
    assert [(r["workers"], r["errors"], r["runtime"]) for r in results["workers"]["runs"]] == [(1, 0, "litert"), (2, 0, "litert")]
    targets = {t["key"]: t for t in results["targets"]}
    assert [t["key"] for t in results["targets"] if not t["extra"]] == list(TARGET_KEYS)
    assert all(targets[key]["status"] in ("PASS", "MISS") for key in TARGET_KEYS), [targets[k] for k in TARGET_KEYS]
    # the paired rounds: every step in every round, in the turning order, and the four ratio targets read them
    paired = results["paired"]
    assert paired["runtime"] == "litert" and paired["skipped_steps"] == {} and paired["limit_config"] == busy["best"]
    assert [r["order"] for r in paired["rounds"]] == [letters(round_order(HALVES, i)) for i in range(plan.make_plan(True).paired_rounds)]
    for paired_round in paired["rounds"]:
        assert set(paired_round["figures"]) == {*FIGURE_OF.values(), *CPU_FIGURES.values()}, paired_round
        assert set(paired_round["comparisons"]) == set(COMPARISONS) and paired_round["errors"] == 0, paired_round
        assert all(value > 0 for value in paired_round["figures"].values()), paired_round
    assert set(paired["ranges"]) == set(COMPARISONS)
    for key in PAIRED_KEYS:
        assert targets[key]["name"].endswith("paired rounds)") and "paired rounds" in targets[key]["detail"], targets[key]
        assert targets[f"{key}_unpaired"]["name"].endswith("sections run minutes apart)") and targets[f"{key}_unpaired"]["extra"]
    assert targets["service_throughput"]["name"].endswith("/ pipeline limit (measured, all cores busy; paired rounds)")
    assert targets["service_throughput_arithmetic"]["status"] in ("PASS", "MISS")
    markdown = (tmp_path / "bench-efficientnet-lite0.md").read_text()
    assert "| target |" in markdown and "[litert]" in markdown and "[tensorflow]" in markdown
    assert "Paired rounds [litert]" in markdown and "| median |" in markdown and "| range |" in markdown
    with Image.open(tmp_path / "bench-efficientnet-lite0.png") as image:
        assert image.format == "PNG"
    logs = tmp_path / "logs" / "bench-efficientnet-lite0"
    assert (logs / "backend.log").exists() and (logs / "backend-tensorflow.log").exists() and (logs / "limit.log").exists()
    assert (logs / "paired.log").exists()
