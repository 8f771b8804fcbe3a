"""The pipeline limit measured with every core busy (tools.bench.busy): its schedule, its counting, its summary,
and how the targets and the report use it. Pure functions; the child processes run in tests/process/test_bench.py."""

from __future__ import annotations

import pytest

from tests.support.bench_results import fake_results
from tools.bench import report, stats
from tools.bench.busy import BusyConfig, busy_configs, make_schedule, summarize_busy, window_rate
from tools.bench.targets import INFO, MISS, PASS, SKIP, evaluate_targets


def test_configs_are_one_single_thread_process_per_core_at_batch_1_and_the_best_batch_and_one_wide_process():
    assert busy_configs(2, 2) == [BusyConfig(2, 1, 1), BusyConfig(2, 1, 2), BusyConfig(1, 2, 1)]
    assert busy_configs(4, 1) == [BusyConfig(4, 1, 1), BusyConfig(1, 4, 1)]
    assert busy_configs(1, 4) == [BusyConfig(1, 1, 1), BusyConfig(1, 1, 4)]  # one core: nothing wide to compare
    assert BusyConfig(2, 1, 2).label == "2 processes x 1 thread, batch 2"
    assert BusyConfig(1, 2, 1).label == "1 process x 2 threads, batch 1"
    with pytest.raises(ValueError, match="cores >= 1"):
        busy_configs(0, 1)


def test_schedule_interleaves_the_configs_rotating_the_order_and_never_overlaps():
    slots = make_schedule(3, rounds=3, start=100.0, warmup_s=0.5, window_s=2.0, gap_s=0.1)
    assert [slot.config for slot in slots] == [0, 1, 2, 1, 2, 0, 2, 0, 1]
    assert [slot.round for slot in slots] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert slots[0].start == 100.0 and slots[0].count_from == 100.5 and slots[0].end == 102.5
    for before, after in zip(slots, slots[1:]):
        assert after.start == pytest.approx(before.end + 0.1)
    with pytest.raises(ValueError):
        make_schedule(2, rounds=1, start=0.0, warmup_s=0.1, window_s=0.0)


def test_window_rate_counts_the_iterations_that_end_inside_the_window_from_the_first_ones_start():
    # (wall start, wall end, images, cpu start, cpu end): one ends in the warm-up, one starts in it, one ends after the window
    iterations = [(0.7, 0.9, 2, 0.0, 0.2), (0.9, 1.1, 2, 0.2, 0.4), (1.1, 1.3, 2, 0.4, 0.6), (1.3, 1.5, 2, 0.6, 0.8),
                  (1.9, 2.1, 2, 1.2, 1.4)]
    rate = window_rate(iterations, count_from=1.0, end=2.0)
    assert rate["images"] == 6 and rate["span_s"] == pytest.approx(0.6) and rate["images_per_s"] == pytest.approx(10.0)
    assert rate["cpu_s"] == pytest.approx(0.6)
    # a batch longer than the window still counts: it ended inside it
    assert window_rate([(0.0, 0.5, 16, 0.0, 0.5), (0.5, 1.2, 16, 0.5, 1.2)], count_from=1.0, end=1.3)["images_per_s"] == pytest.approx(16 / 0.7, abs=0.001)
    assert window_rate([], 0.0, 1.0) == {"images": 0, "span_s": 0.0, "images_per_s": 0.0, "cpu_s": 0.0}


def test_summary_sums_the_processes_of_a_slot_and_takes_the_median_over_rounds():
    configs = busy_configs(2, 2)
    slots = make_schedule(len(configs), rounds=3, start=0.0, warmup_s=0.1, window_s=1.0)

    def rate(ips, images=100, cpu_s=0.7):
        return {"images_per_s": ips, "images": images, "cpu_s": cpu_s}

    # per config, each process's rate in its three rounds; the wide config runs in process 0 only
    by_config = {0: [140.0, 150.0, 100.0], 1: [160.0, 155.0, 90.0], 2: [250.0, 240.0, 260.0]}
    seen = {0: 0, 1: 0, 2: 0}
    process0, process1 = [], []
    for slot in slots:
        value = by_config[slot.config][seen[slot.config]]
        seen[slot.config] += 1
        process0.append(rate(value))
        process1.append(rate(value) if slot.config != 2 else rate(0.0, images=0, cpu_s=0.0))
    summary = summarize_busy(configs, slots, [process0, process1])
    rows = {row["label"]: row for row in summary["configs"]}
    assert rows["2 processes x 1 thread, batch 1"]["rounds_images_per_s"] == [280.0, 300.0, 200.0]
    assert rows["2 processes x 1 thread, batch 1"]["images_per_s"] == 280.0
    assert rows["2 processes x 1 thread, batch 2"]["images_per_s"] == 310.0
    assert rows["1 process x 2 threads, batch 1"]["images_per_s"] == 250.0
    assert summary["best"] == "2 processes x 1 thread, batch 2" and summary["images_per_s"] == 310.0
    # CPU: 2 x 0.7 s for 200 images in the single-thread configs, 0.7 s for 100 in the wide one
    assert rows["2 processes x 1 thread, batch 2"]["core_ms_per_image"] == pytest.approx(7.0)
    assert rows["1 process x 2 threads, batch 1"]["core_ms_per_image"] == pytest.approx(7.0)
    assert summary["cheapest_core_ms_per_image"] == pytest.approx(7.0) and summary["cpu_limit_ips"] == pytest.approx(2000 / 7.0, abs=0.01)


def test_the_cpu_reading_of_the_limit_is_the_cheapest_config_over_all_cores():
    configs = busy_configs(2, 2)
    slots = make_schedule(len(configs), rounds=1, start=0.0, warmup_s=0.1, window_s=1.0)
    # the wide process was luckiest on the clock, but costs the most CPU per image
    costs = {0: (150.0, 0.69), 1: (140.0, 0.66), 2: (320.0, 0.8)}  # per process: images/s, CPU s for 100 images
    per_process = [[{"images_per_s": costs[s.config][0], "images": 100, "cpu_s": costs[s.config][1]} for s in slots],
                   [{"images_per_s": costs[s.config][0] if s.config != 2 else 0.0, "images": 100 if s.config != 2 else 0,
                     "cpu_s": costs[s.config][1] if s.config != 2 else 0.0} for s in slots]]
    summary = summarize_busy(configs, slots, per_process)
    assert summary["best"] == "1 process x 2 threads, batch 1" and summary["images_per_s"] == 320.0
    assert summary["cheapest"] == "2 processes x 1 thread, batch 2" and summary["cheapest_core_ms_per_image"] == pytest.approx(6.6)
    assert summary["cpu_limit_ips"] == pytest.approx(2000 / 6.6, abs=0.01)


def test_summary_of_nothing_counted_says_so():
    configs = busy_configs(1, 1)
    slots = make_schedule(1, rounds=1, start=0.0, warmup_s=0.1, window_s=0.1)
    with pytest.raises(ValueError, match="window too short"):
        summarize_busy(configs, slots, [[{"images_per_s": 0.0, "images": 0, "cpu_s": 0.0}]])


def test_best_batch_is_the_cheapest_single_thread_batch():
    table = [{"threads": 1, "batch": 1, "ms_per_image": 5.1}, {"threads": 1, "batch": 2, "ms_per_image": 4.9},
             {"threads": 2, "batch": 8, "ms_per_image": 2.4}]
    assert stats.best_batch(table) == 2
    assert stats.best_batch(table, threads=2) == 8
    with pytest.raises(ValueError, match="at 4 thread"):
        stats.best_batch(table, threads=4)


class _TensorFlowLike:
    """Stands in for a model served on TensorFlow: a forward table timed at its intra-op threads only."""

    name, runtime, runtime_reason, input_size = "stand-in", "tensorflow", "random weights are not converted", (32, 32)

    def preprocess(self, array):
        return array.astype("float32") / 255.0

    def predict(self, batch):
        import numpy as np

        return np.full((len(batch), 10), 0.1, dtype=np.float32)


def test_the_limit_of_a_model_on_tensorflow_is_measured_without_the_busy_cores_part_and_says_why(monkeypatch):
    # TensorFlow's forward table has no 1-thread rows: picking the busy-cores batch from it stopped the whole bench
    from model_backend.settings import ServerSettings
    from tools.bench import limit
    from tools.bench.plan import make_plan

    monkeypatch.setattr(limit, "backend_model", lambda settings: (_TensorFlowLike(), ServerSettings()))
    monkeypatch.setattr(limit, "cpu_count", lambda: 2, raising=False)
    measured = limit.measure_limit(None, make_plan(True, None))
    assert measured["runtime"] == "tensorflow" and "runs on tensorflow" in measured["busy_limit"]["skipped"]
    assert {row["threads"] for row in measured["forward_table"]} != {1} and measured["pipeline_limit_ips"] > 0


def busy_results(busy_ips: float = 320.0, backend_cpu_ms: float = 7.5) -> dict:
    results = fake_results()
    results["limit"]["busy_limit"] = {
        "configs": [{"processes": 2, "threads": 1, "batch": 1, "label": "2 processes x 1 thread, batch 1", "images_per_s": 300.0,
                     "rounds_images_per_s": [300.0, 290.0, 310.0], "core_ms_per_image": 6.6},
                    {"processes": 2, "threads": 1, "batch": 8, "label": "2 processes x 1 thread, batch 8", "images_per_s": busy_ips,
                     "rounds_images_per_s": [busy_ips] * 3, "core_ms_per_image": 6.25}],
        "best": "2 processes x 1 thread, batch 8", "images_per_s": busy_ips, "core_ms_per_image": 6.25,
        "cheapest": "2 processes x 1 thread, batch 8", "cheapest_core_ms_per_image": 6.25, "cpu_limit_ips": 320.0,
        "rounds": 3, "warmup_s": 0.3, "window_s": 1.5, "processes": 2}
    results["service"]["runs"][1]["cpu_ms_per_request"] = {"backend": backend_cpu_ms}
    return results


def test_the_service_is_held_to_the_measured_limit_and_the_arithmetic_ratio_is_also_reported():
    targets = {t.key: t for t in evaluate_targets(busy_results())}
    service = targets["service_throughput"]
    assert service.name == "service [litert] images/s @c16 / pipeline limit (measured, all cores busy)"
    assert service.measured == pytest.approx(360.0 / 320.0) and service.status == PASS
    assert "360.0 vs 320.0 images/s (limit: 2 processes x 1 thread, batch 8); not paired: no paired rounds in this run" == service.detail
    arithmetic = targets["service_throughput_arithmetic"]
    assert arithmetic.extra and "parts timed alone" in arithmetic.name and arithmetic.measured == pytest.approx(360.0 / 400.0)
    cpu = targets["service_cpu_vs_busy"]
    assert cpu.extra and cpu.status == INFO and cpu.measured == pytest.approx(7.5 / 6.25)
    assert cpu.detail == "7.50 vs 6.25 core-ms per image"
    low = {t.key: t for t in evaluate_targets(busy_results(busy_ips=450.0))}["service_throughput"]
    assert low.status == MISS and low.measured == pytest.approx(0.8)


def test_without_a_measured_limit_the_service_is_held_to_the_arithmetic_one_and_says_so():
    targets = {t.key: t for t in evaluate_targets(fake_results())}
    service = targets["service_throughput"]
    assert service.name.endswith("/ pipeline limit (arithmetic: parts timed alone)") and service.measured == pytest.approx(0.9)
    assert targets["service_throughput_arithmetic"].status == SKIP and "the target above" in targets["service_throughput_arithmetic"].detail
    assert stats.measured_limit({}) == (None, "arithmetic: parts timed alone")


def test_report_shows_every_busy_config_the_measured_limit_and_the_arithmetic_one():
    rows = dict(map(tuple, report.limit_rows(busy_results())))
    assert rows["all cores busy: 2 processes x 1 thread, batch 8 (decode + preprocess + forward)"] == (
        "320.0 images/s, 6.25 core-ms per image (rounds: 320, 320, 320)")
    assert rows["pipeline limit, measured (2 cores busy; the service is held to it)"] == (
        "320.0 images/s (2 processes x 1 thread, batch 8; median of 3 rounds of 1.5 s)")
    assert rows["pipeline limit, arithmetic (parts timed alone, 2 cores)"] == "400.0 images/s"
    assert rows["pipeline limit from the CPU cost, all cores busy (2 cores x 1000 / core-ms per image)"] == (
        "320.0 images/s (2 processes x 1 thread, batch 8: 6.25 core-ms per image; holds when other processes take CPU)")
    old = dict(map(tuple, report.limit_rows(fake_results())))  # a run from before the busy-cores limit
    assert old["pipeline limit (2 cores)"] == "400.0 images/s"
    skipped = fake_results()
    skipped["limit"]["busy_limit"] = {"skipped": "the backend's model runs on tensorflow: no flatbuffer for plain interpreters"}
    assert dict(map(tuple, report.limit_rows(skipped)))["pipeline limit, measured (all cores busy)"].startswith("skipped: ")
    assert "measured, all cores busy" in stats.PIPELINE_LIMIT_DEFINITION and "spread over the cores" in stats.PIPELINE_LIMIT_DEFINITION


def test_the_services_execution_row_says_how_many_requests_a_pool_thread_batches():
    from tools.bench.sections import runtime_of

    info = {"runtime": "litert", "execution": "adaptive", "execution_reason": "measured", "pool_batch": 2}
    results = fake_results()
    results["service"].update(runtime_of(info))
    rows = dict(map(tuple, report.other_rows(results)))
    assert rows["service [litert] execution (backend's info)"] == "adaptive: measured; up to 2 waiting requests per forward pass"


def test_ab_summary_gives_medians_and_round_by_round_ratios_to_the_first_candidate():
    from tools.bench.ab import parse_candidate, rotated, summarize_ab

    assert parse_candidate("batch2:WARMSERVE_POOL_BATCH=2,WARMSERVE_EXECUTION=pool") == (
        "batch2", {"WARMSERVE_POOL_BATCH": "2", "WARMSERVE_EXECUTION": "pool"})
    assert parse_candidate("today:") == ("today", {})
    with pytest.raises(ValueError, match="WARMSERVE_"):
        parse_candidate("x:PATH=/bin")
    assert rotated(["a", "b", "c"], 1) == ["b", "c", "a"] and rotated(["a", "b"], 2) == ["a", "b"]

    def run(ips, p50, cpu):
        return {"ips_c16": ips, "p50_c1_ms": p50, "cpu_c16": cpu}

    summary = summarize_ab({"a": [run(100, 5.0, 7.0), run(50, 6.0, 7.2), run(200, 5.5, 7.1)],
                            "b": [run(110, 5.2, 6.7), run(60, 6.1, 6.8), run(190, 5.4, 6.6)]})
    assert summary["a"]["ips_ratio"] == 1.0 and summary["a"]["paired_ips_ratio"] == 1.0
    assert summary["b"]["ips_c16"] == 110 and summary["b"]["ips_ratio"] == 1.1
    assert summary["b"]["paired_ips_ratio"] == pytest.approx(1.1) and summary["b"]["rounds_faster"] == 2  # 1.1, 1.2, 0.95
    assert summary["b"]["p50_diff_ms"] == pytest.approx(-0.1) and summary["b"]["cpu_ratio"] == pytest.approx(6.7 / 7.1, abs=1e-4)
