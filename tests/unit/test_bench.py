"""The bench (tools.bench): its pure helpers (percentiles, summaries, targets, tables, the HTML figure, the load loop).

PNG figures, git's ignore list and the --quick run end to end are in tests/process/test_bench.py.

No timing assertions: the numbers depend on the machine; only their shape and
the verdict logic are checked.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from tests.support.bench_results import fake_results
from tools.bench import figures, load, meter, plan, report, run, stats
from tools.bench.targets import EXTRA_KEYS, INFO, MISS, PASS, SKIP, TARGET_KEYS, Target, evaluate_targets


# -- statistics ---------------------------------------------------------------------------


@pytest.mark.parametrize("q", [0, 1, 25, 50, 90, 95, 99, 100])
def test_percentile_matches_numpy_linear(q):
    rng = random.Random(q)
    for n in (1, 2, 3, 10, 201):
        values = [rng.uniform(0, 100) for _ in range(n)]
        assert stats.percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_small_cases_and_errors():
    assert stats.percentile([5.0], 99) == 5.0
    assert stats.percentile([1.0, 3.0], 50) == 2.0
    assert stats.percentile([4, 1, 3, 2], 0) == 1
    with pytest.raises(ValueError, match="at least one value"):
        stats.percentile([], 50)
    with pytest.raises(ValueError, match="between 0 and 100"):
        stats.percentile([1.0], 101)


def test_summarize_load():
    summary = stats.summarize_load([10.0, 20.0, 30.0, 40.0], wall_s=2.0, batch_sizes=[1, 1, 2, 4], errors=1)
    assert summary["requests"] == 4 and summary["errors"] == 1
    assert summary["p50_ms"] == 25.0
    assert summary["images_per_s"] == 2.0
    assert summary["mean_batch_size"] == 2.0 and summary["max_batch_size"] == 4
    assert stats.summarize_load([], wall_s=1.0)["images_per_s"] == 0.0


def test_median_stages_skips_missing():
    stages = stats.median_stages([{"decode": 2, "inference": 10}, {"decode": 4, "inference": 30, "total": 40}, {}])
    assert stages == {"decode": 3.0, "inference": 20.0, "total": 40.0}


def test_pipeline_limit_is_the_cheapest_forward_in_core_ms_plus_decode_over_the_cores():
    from tests.support.bench_results import forward_table

    table = forward_table()
    best = stats.best_forward(table)  # 1 thread x 4.0 ms beats 2 threads x 2.5 ms = 5.0 core-ms
    assert (best["threads"], best["batch"], stats.core_ms_per_image(best)) == (1, 8, 4.0)
    assert stats.pipeline_limit_ips(1.0, 4.0, cores=2) == pytest.approx(2 * 1000 / (4.0 + 1.0))
    assert stats.pipeline_limit_ips(2.0, 8.0, cores=1) == pytest.approx(100.0)
    faster_two = table + [{"threads": 2, "batch": 32, "ms_per_image": 1.5}]  # 3.0 core-ms
    assert stats.best_forward(faster_two)["threads"] == 2
    assert "cores x 1000 / (best_core_ms + decode_preprocess_ms)" in stats.PIPELINE_LIMIT_DEFINITION
    with pytest.raises(ValueError):
        stats.pipeline_limit_ips(0.0, 0.0, cores=2)
    with pytest.raises(ValueError):
        stats.pipeline_limit_ips(1.0, 1.0, cores=0)
    with pytest.raises(ValueError):
        stats.best_forward([])


def test_interleaved_timing_alternates_the_order():
    from tools.bench.limit import interleaved_ms

    calls = []
    first, second = interleaved_ms(lambda: calls.append("a"), lambda: calls.append("b"), pairs=3, warmup=0)
    assert len(first) == len(second) == 3
    assert calls == ["a", "b", "b", "a", "a", "b"]


def test_plan_counts():
    default, quick = plan.make_plan(False), plan.make_plan(True)
    assert (default.requests_at(1), default.requests_at(16)) == (200, 400)
    assert quick.requests_at(1) < default.requests_at(1) and quick.monolith_runs == 1
    assert plan.make_plan(True, 5).requests_at(32) == 10
    with pytest.raises(ValueError):
        plan.make_plan(False, 0)


def test_run_load_counts_requests_and_errors():
    calls = iter(range(1000))

    def make_sender():
        def send():
            n = next(calls)
            if n % 5 == 4:
                raise RuntimeError("boom")
            return {"batch_size": 2, "timings_ms": {"total": 0.0}}

        return send, lambda: None

    result = load.run_load(make_sender, concurrency=4, requests=20)
    assert len(result.latencies_ms) + len(result.errors) == 20
    assert len(result.errors) == 4
    summary = load.summarize(result)
    assert summary["errors"] == 4 and summary["mean_batch_size"] == 2.0 and summary["first_errors"] == ["RuntimeError: boom"]


def test_output_stem():
    assert plan.output_stem("efficientnet-lite0") == "bench-efficientnet-lite0"
    assert plan.output_stem("/models/My Model.keras") == "bench-My-Model"


# -- targets and reports ----------------------------------------------------------------------


def verdicts(results: dict) -> dict[str, str]:
    return {t.key: t.status for t in evaluate_targets(results)}


def target(results: dict, key: str) -> Target:
    return {t.key: t for t in evaluate_targets(results)}[key]


def test_every_target_of_issue_9_with_its_verdict():
    targets = evaluate_targets(fake_results())
    assert [t.key for t in targets if not t.extra] == list(TARGET_KEYS) and len(TARGET_KEYS) == 10
    assert verdicts(fake_results()) == {
        "forward": PASS,  # 3.3 / 3.0 = 1.10
        "request": PASS,  # 5.0 ms
        "service_latency": PASS,  # 1.16x, but only +0.8 ms
        "http_latency": MISS,  # +3.0 ms
        "service_throughput": PASS,  # 360 / 400 = 0.90
        "http_throughput": MISS,  # 280 / 360 = 0.78
        "service_tail": PASS,  # 2.0
        "start": PASS,  # 1.5 s
        "rss": PASS,  # 320 MiB = 336 MB
        "camera_decode": PASS,  # 10 ms
        # no paired rounds in this run: the four ratio targets above are the sections' figures, and their extra rows say so
        "service_latency_unpaired": SKIP,
        "http_latency_unpaired": SKIP,
        "service_throughput_unpaired": SKIP,
        "http_throughput_unpaired": SKIP,
        "http_tail": MISS,  # 3.0, reported
        "http_png_latency": MISS,  # 12 ms, aim 11
        "http_png_throughput": PASS,  # 200 images/s, aim 175
        "service_throughput_arithmetic": SKIP,  # no busy-cores limit in this run: the target is already 360 / 400
        "service_client_threads_throughput": MISS,  # through BackendClient from 16 threads: 330 / 400 = 0.825
        "service_cpu_vs_busy": SKIP,  # no busy-cores limit, no backend CPU
        "monolith_vs_tensorflow_service": INFO,
        "monolith_vs_service": INFO,
        "tensorflow_vs_litert_latency": INFO,
        "litert_vs_tensorflow_throughput": INFO,
    }
    assert all(t.extra for t in targets if t.key in EXTRA_KEYS)


def _set(results: dict, path: str, value) -> dict:
    """``_set(r, "limit.request_p50_ms", 7)``; a number in the path indexes a list (``service.runs.0.p50_ms``)."""
    *parents, last = path.split(".")
    node = results
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    node[int(last) if last.isdigit() else last] = value
    return results


@pytest.mark.parametrize("key, path, value, status", [
    ("forward", "limit.forward_vs_plain.backend_ms", 3.44, PASS),  # 1.147
    ("forward", "limit.forward_vs_plain.backend_ms", 3.5, MISS),
    ("request", "limit.request_p50_ms", 6.0, PASS),
    ("request", "limit.request_p50_ms", 6.1, MISS),
    ("service_throughput", "service.runs.1.images_per_s", 339.0, MISS),
    ("http_throughput", "http.runs.1.images_per_s", 306.0, PASS),  # 0.85 of 360
    ("service_tail", "service.runs.1.p99_ms", 126.0, MISS),
    ("start", "startup.median_s", 2.0, PASS),
    ("start", "startup.median_s", 2.01, MISS),
    ("rss", "service.rss_after_http_mb", 334.0, MISS),  # 334 MiB = 350.2 MB: the threshold is in MB (10^6 bytes)
    ("rss", "service.rss_after_http_mb", 333.0, PASS),
    ("camera_decode", "limit.camera_decode.p50_ms", 12.5, MISS),
])
def test_target_thresholds(key, path, value, status):
    assert target(_set(fake_results(), path, value), key).status == status


def test_service_latency_passes_by_ratio_or_by_one_ms():
    results = fake_results()
    _set(results, "limit.request_p50_ms", 20.0)
    _set(results, "service.runs.0.p50_ms", 21.9)  # +1.9 ms but 1.095x
    assert target(results, "service_latency").status == PASS
    _set(results, "service.runs.0.p50_ms", 22.5)  # 1.125x and +2.5 ms
    assert target(results, "service_latency").status == MISS
    _set(results, "limit.request_p50_ms", 4.0)
    _set(results, "service.runs.0.p50_ms", 5.0)  # 1.25x but only +1.0 ms
    assert target(results, "service_latency").status == PASS


def test_http_latency_is_a_difference_in_ms():
    results = _set(fake_results(), "http.runs.0.p50_ms", 7.0)
    assert (target(results, "http_latency").status, target(results, "http_latency").measured) == (PASS, pytest.approx(2.0))


def test_every_target_is_skip_without_its_data():
    results = {"model": "x", "limit": {}, "service": {}, "http": {}, "startup": {}, "monolith": {}}
    assert set(verdicts(results).values()) == {SKIP}


def test_skipped_sections_are_skip_with_their_reason():
    results = fake_results(http={"skipped": "dashboard not available: boom"}, monolith={"skipped": "--skip-monolith"},
                           service_tf={"skipped": "--skip-tf-service"})
    got = {t.key: t for t in evaluate_targets(results)}
    assert got["http_throughput"].status == SKIP and "dashboard not available" in got["http_throughput"].detail
    assert got["http_latency"].status == SKIP and got["http_png_throughput"].status == SKIP
    assert got["monolith_vs_service"].status == SKIP and "--skip-monolith" in got["monolith_vs_service"].detail
    assert got["tensorflow_vs_litert_latency"].status == SKIP and "--skip-tf-service" in got["tensorflow_vs_litert_latency"].detail
    assert got["service_tail"].status == PASS


def test_litert_targets_skip_with_the_reason_when_the_backend_served_tensorflow():
    results = fake_results()
    results["limit"].update(runtime="tensorflow", forward_vs_plain={"skipped": "the backend's model runs on tensorflow (random weights)"})
    results["service"].update(runtime="tensorflow", runtime_reason="random weights (timing only) are not converted")
    forward, rss = target(results, "forward"), target(results, "rss")
    assert forward.status == SKIP and "random weights" in forward.detail
    assert rss.status == SKIP and "served on tensorflow" in rss.detail and "random weights" in rss.detail


def test_runtime_labels_name_each_side():
    names = {t.key: t.name for t in evaluate_targets(fake_results())}
    assert names["service_latency"].startswith("service [litert]")
    assert names["http_throughput"] == "HTTP API [litert] images/s @c16 / service [litert] images/s @c16"
    assert "monolith [tensorflow]" in names["monolith_vs_tensorflow_service"] and "service [tensorflow]" in names["monolith_vs_tensorflow_service"]
    assert names["tensorflow_vs_litert_latency"].startswith("service [tensorflow] p50 @c1 / service [litert]")
    rows = report.load_rows(fake_results())
    assert {row[0] for row in rows} == {"service (ZeroMQ) [litert]", "service (ZeroMQ) [tensorflow]", "HTTP API [litert]",
                                        "HTTP API, chelsea PNG [litert]"}
    assert "monolith [tensorflow]" in figures.monolith_caption(fake_results())
    assert "service [tensorflow]" in figures.monolith_caption(fake_results())
    text = report.console_report(fake_results(), evaluate_targets(fake_results()))
    assert "threads \\ batch" in text and "best forward" in text and "pipeline limit = cores x 1000" in text


def test_runtimes_come_from_the_backends_info_or_a_workers_log():
    from types import SimpleNamespace

    from tools.bench.sections import runtime_from_log, runtime_of

    assert runtime_of({"runtime": "litert", "runtime_reason": "cached", "execution": "pool"}) == {
        "runtime": "litert", "runtime_reason": "cached", "execution": "pool"}
    assert runtime_of({}) == {"runtime": "?", "runtime_reason": ""}
    log_text = ("2026-01-01 INFO model_backend.service: Runtime: litert (cached LiteRT model verified (max diff 1e-6); 1 threads)\n"
                "2026-01-01 INFO model_backend.service: Backend ready on tcp://127.0.0.1:1 (model=m, execution=wide, max_batch=16)\n")
    worker = SimpleNamespace(log_text=lambda: log_text)
    assert runtime_from_log(worker) == {"runtime": "litert", "runtime_reason": "cached LiteRT model verified (max diff 1e-6); 1 threads",
                                        "execution": "wide"}
    assert runtime_from_log(SimpleNamespace(log_text=lambda: "starting\n"))["runtime"] == "?"


def test_disturbed_measurements_are_named_above_the_targets():
    results = fake_results()
    assert report.disturbance_note(results) == []
    results["limit"]["others_cpu_pct"] = 40.0
    results["service"]["runs"][1]["others_cpu_pct"] = 25.0
    results["service"]["runs"][0]["others_cpu_pct"] = 5.0
    assert report.disturbed(results) == ["the limit (40%)", "service (ZeroMQ) [litert] c=16 (25%)"]
    assert "Disturbed:" in report.console_report(results, evaluate_targets(results))
    assert "**Disturbed:" in report.markdown_report(results, evaluate_targets(results))


def test_figure_labels_the_runtimes(tmp_path):
    names = {trace.name for trace in figures.bench_figure(fake_results()).data}
    assert {"service [litert] p50", "service [tensorflow] p50", "HTTP API [litert] p50", "service [tensorflow]"} <= names


def test_figure_as_self_contained_html_without_a_png_engine(tmp_path):
    path = figures.write_figure(fake_results(), tmp_path / "plot", "html")
    text = path.read_text()
    assert path.suffix == ".html" and "warmserve bench: efficientnet-lite0" in text and "<script src=" not in text  # plotly.js inline: works offline


def test_figure_log_ticks_cover_the_values():
    assert figures.log_ticks([25.0, 800.0]) == [20, 50, 100, 200, 500, 1000]


def test_redraw_from_json_measures_nothing(tmp_path):
    source = tmp_path / "in.json"
    source.write_text(json.dumps(fake_results()))
    assert run.main(["--from-json", str(source), "--out", str(tmp_path / "out"), "--figure", "html"]) == 0
    assert "| target |" in (tmp_path / "out" / "bench-efficientnet-lite0.md").read_text()
    assert json.loads((tmp_path / "out" / "bench-efficientnet-lite0.json").read_text())["targets"]


# -- the load loop and the CPU meter --------------------------------------------------------


def test_run_load_reports_a_sender_that_cannot_start():
    def make_sender():
        raise RuntimeError("no session")

    with pytest.raises(plan.BenchError, match="no session"):
        load.run_load(make_sender, concurrency=3, requests=5)


def test_quietest_measures_again_only_while_disturbed():
    readings = iter([{"others_cpu_pct": 40.0, "v": 1}, {"others_cpu_pct": 2.0, "v": 2}, {"others_cpu_pct": 0.0, "v": 3}])
    best = meter.quietest("x", lambda: next(readings), attempts=3)
    assert best["v"] == 2 and best["others_cpu_pct_per_try"] == [40.0, 2.0]
    assert meter.quietest("x", lambda: {"others_cpu_pct": 50.0}, attempts=1) == {"others_cpu_pct": 50.0}


def test_cpu_meter_reads_percentages():
    import os

    reading = meter.CpuMeter({"me-as-a-child": os.getpid()}).reading()
    assert set(reading) == {"others_cpu_pct", "steal_pct", "cpu_s"} and reading["others_cpu_pct"] >= 0
    assert set(reading["cpu_s"]) == {"bench"}  # only children are watched by pid


def test_the_report_names_each_load_generator():
    text = report.markdown_report(fake_results(), evaluate_targets(fake_results()))
    assert "Load generator (service: one thread, one DEALER socket carrying every request in flight;" in text
    assert "via BackendClient, 16 threads (as the dashboard calls it) / pipeline limit" in text
