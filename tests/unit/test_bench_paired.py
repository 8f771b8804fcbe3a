"""The bench's paired rounds (tools.bench.paired): their order, each round's ratios, the medians and ranges over rounds,
and how the four ratio targets read them (or fall back to the sections' figures, saying why). Pure functions; the
rounds run against real processes in the --quick bench (tests/process/test_bench.py)."""

from __future__ import annotations

import pytest

from tests.support.bench_results import fake_results
from tools.bench import report
from tools.bench.busy import BusyConfig, config_of
from tools.bench.paired import HALVES, STEP_LETTERS, letters, round_comparisons, round_order, summarize_rounds
from tools.bench.targets import MISS, PASS, SKIP, evaluate_targets

PAIRS = (("http_c1", "inprocess"), ("inprocess", "service_c1"), ("limit", "service_c16"), ("service_c16", "http_c16"))


def test_the_order_turns_every_round_and_never_parts_a_compared_pair():
    orders = [letters(round_order(HALVES, index)) for index in range(5)]
    assert orders == ["c a b f d e", "e d f b a c", "f d e c a b", "b a c e d f", "c a b f d e"]
    for index in range(8):
        order = round_order(HALVES, index)
        assert sorted(order) == sorted(STEP_LETTERS)
        for first, second in PAIRS:
            assert abs(order.index(first) - order.index(second)) == 1, (index, order)
    # over four rounds each side of a pair runs first twice
    firsts = [round_order(HALVES, index).index("inprocess") < round_order(HALVES, index).index("service_c1") for index in range(4)]
    assert firsts.count(True) == 2


def test_the_order_without_the_steps_left_out():
    without_http = [[step for step in half if not step.startswith("http")] for half in HALVES]
    assert [letters(round_order(without_http, index)) for index in range(4)] == ["a b f d", "d f b a", "f d a b", "b a d f"]
    assert letters(round_order([["inprocess", "service_c1"], []], 1)) == "b a"
    assert round_order([[], []], 0) == []


def test_each_round_compares_its_own_figures():
    figures = {"inprocess_p50_ms": 4.0, "service_c1_p50_ms": 5.0, "http_c1_p50_ms": 6.5, "service_c16_ips": 270.0,
               "http_c16_ips": 243.0, "limit_ips": 300.0}
    assert round_comparisons(figures) == {"service_c1_ratio": 1.25, "service_c1_extra_ms": 1.0, "http_c1_extra_ms": 2.5,
                                          "service_c16_vs_limit": 0.9, "http_c16_vs_service": 0.9}
    # CPU per image, the backend's at c=16 over the limit's processes': reported beside the targets
    assert round_comparisons({"service_c16_cpu_ms_per_image": 7.0, "limit_core_ms_per_image": 6.4}) == {
        "service_c16_cpu_vs_limit": pytest.approx(1.0938)}
    # a side missing (--skip-http) or a limit of 0: that comparison is left out, the others stand
    partial = round_comparisons({**figures, "http_c1_p50_ms": None, "limit_ips": 0.0, "http_c16_ips": None})
    assert partial == {"service_c1_ratio": 1.25, "service_c1_extra_ms": 1.0}


def rounds_of(*figures: dict) -> list[dict]:
    return [{"round": index + 1, "figures": f, "comparisons": round_comparisons(f)} for index, f in enumerate(figures)]


def test_medians_and_ranges_over_rounds_are_of_the_per_round_ratios():
    # the host drifts: both sides slow down together in round 2, so the ratio holds while the figures move
    rounds = rounds_of({"inprocess_p50_ms": 4.0, "service_c1_p50_ms": 4.4, "service_c16_ips": 270.0, "limit_ips": 300.0},
                       {"inprocess_p50_ms": 5.0, "service_c1_p50_ms": 5.6, "service_c16_ips": 216.0, "limit_ips": 240.0},
                       {"inprocess_p50_ms": 4.2, "service_c1_p50_ms": 4.5, "service_c16_ips": 260.0, "limit_ips": 310.0})
    summary = summarize_rounds(rounds)
    assert summary["medians"]["inprocess_p50_ms"] == 4.2 and summary["medians"]["service_c16_ips"] == 260.0
    assert summary["per_round"]["service_c1_ratio"] == [1.1, 1.12, pytest.approx(1.0714, abs=1e-4)]
    assert summary["medians"]["service_c1_ratio"] == 1.1
    assert summary["ranges"]["service_c1_ratio"] == [pytest.approx(1.0714, abs=1e-4), 1.12]
    assert summary["medians"]["service_c1_extra_ms"] == pytest.approx(0.4) and summary["ranges"]["service_c1_extra_ms"] == [
        pytest.approx(0.3), pytest.approx(0.6)]
    assert summary["medians"]["service_c16_vs_limit"] == 0.9 and summary["ranges"]["service_c16_vs_limit"] == [pytest.approx(0.8387, abs=1e-4), 0.9]
    assert "http_c1_extra_ms" not in summary["medians"] and "http_c1_extra_ms" not in summary["ranges"]
    # a figure missing from one round: the median of the rounds that have it
    rounds[1]["figures"].pop("limit_ips")
    rounds[1]["comparisons"] = round_comparisons(rounds[1]["figures"])
    assert summarize_rounds(rounds)["per_round"]["service_c16_vs_limit"] == [0.9, pytest.approx(0.8387, abs=1e-4)]


def test_the_limit_step_runs_the_busy_limits_best_config():
    busy = {"best": "2 processes x 1 thread, batch 2",
            "configs": [{"label": "2 processes x 1 thread, batch 1", "processes": 2, "threads": 1, "batch": 1},
                        {"label": "2 processes x 1 thread, batch 2", "processes": 2, "threads": 1, "batch": 2}]}
    assert config_of(busy) == BusyConfig(2, 1, 2)
    assert config_of({"skipped": "the backend's model runs on tensorflow"}) is None


# -- the targets and the report ---------------------------------------------------------------------


def paired_section(**overrides) -> dict:
    """Three paired rounds on fake_results' machine: each round's ratios differ from the sections' (taken minutes apart)."""
    rounds = rounds_of(
        {"inprocess_p50_ms": 5.0, "service_c1_p50_ms": 5.4, "http_c1_p50_ms": 6.6, "service_c16_ips": 330.0, "http_c16_ips": 300.0, "limit_ips": 370.0},
        {"inprocess_p50_ms": 6.0, "service_c1_p50_ms": 6.3, "http_c1_p50_ms": 7.2, "service_c16_ips": 290.0, "http_c16_ips": 250.0, "limit_ips": 330.0},
        {"inprocess_p50_ms": 5.5, "service_c1_p50_ms": 6.2, "http_c1_p50_ms": 7.9, "service_c16_ips": 310.0, "http_c16_ips": 270.0, "limit_ips": 360.0},
    )
    for run, order, others in zip(rounds, ("c a b f d e", "e d f b a c", "f d e c a b"), (1.0, 2.0, 3.0)):
        run.update(order=order, others_cpu_pct=others, errors=0)
    section = {"runtime": "litert", "rounds": rounds, **summarize_rounds(rounds), "skipped_steps": {}, "requests_c1": 100,
               "requests_concurrent": 400, "concurrency": 16, "limit_config": "2 processes x 1 thread, batch 2",
               "others_cpu_pct": 2.0, "definition": "paired rounds = ..."}
    section.update(overrides)
    return section


def targets_of(results: dict) -> dict:
    return {t.key: t for t in evaluate_targets(results)}


def test_the_four_ratio_targets_take_the_paired_medians_and_show_the_range():
    got = targets_of(fake_results(paired=paired_section()))
    service = got["service_latency"]  # per round 1.08, 1.05, 1.127: median 1.08 (the sections' 5.8 / 5.0 = 1.16)
    assert service.name == "service [litert] p50 @c1 / in-process request p50 (paired rounds)"
    assert service.measured == pytest.approx(1.08) and service.status == PASS
    assert service.detail == ("6.20 ms vs 5.50 ms (medians of 3 paired rounds); per round 1.05..1.13x, +0.30..+0.70 ms (median +0.40 ms)")
    http = got["http_latency"]  # per round +1.6, +1.2, +2.4: median +1.6 (the sections' +3.0 misses)
    assert http.name == "HTTP API [litert] p50 @c1 - in-process request p50 (ms; paired rounds)"
    assert (http.measured, http.status) == (pytest.approx(1.6), PASS)
    assert http.detail == "7.20 ms vs 5.50 ms (medians of 3 paired rounds); per round +1.20..+2.40 ms"
    throughput = got["service_throughput"]  # 0.8919, 0.8788, 0.8611
    assert throughput.name == "service [litert] images/s @c16 / pipeline limit (measured, all cores busy; paired rounds)"
    assert (throughput.measured, throughput.status) == (pytest.approx(0.8788), PASS)
    assert throughput.detail == ("310.0 vs 360.0 images/s (medians of 3 paired rounds; limit: 2 processes x 1 thread, batch 2); "
                                 "per round 0.861..0.892")
    http_throughput = got["http_throughput"]  # 0.9091, 0.8621, 0.871
    assert (http_throughput.measured, http_throughput.status) == (pytest.approx(0.871), PASS)
    assert http_throughput.detail == "270.0 vs 310.0 images/s (medians of 3 paired rounds); per round 0.862..0.909"
    assert not any(t.extra for t in (service, http, throughput, http_throughput))


def test_the_sections_ratios_are_still_reported_beside_the_paired_targets():
    got = targets_of(fake_results(paired=paired_section()))
    unpaired = got["service_latency_unpaired"]
    assert unpaired.extra and unpaired.name == "service [litert] p50 @c1 / in-process request p50 (sections run minutes apart)"
    assert unpaired.measured == pytest.approx(5.8 / 5.0) and unpaired.status == PASS and unpaired.detail == "5.80 ms vs 5.00 ms (+0.80 ms)"
    assert got["http_latency_unpaired"].name == "HTTP API [litert] p50 @c1 - in-process request p50 (ms; sections run minutes apart)"
    assert got["http_latency_unpaired"].status == MISS  # +3.0 ms, minutes apart; paired it passes
    assert got["service_throughput_unpaired"].name.endswith("/ pipeline limit (arithmetic: parts timed alone; sections run minutes apart)")
    assert got["http_throughput_unpaired"].status == MISS and got["http_throughput_unpaired"].measured == pytest.approx(280 / 360)


def test_a_paired_miss_is_a_miss():
    slow = paired_section()
    for run in slow["rounds"]:
        run["figures"]["service_c1_p50_ms"] = run["figures"]["inprocess_p50_ms"] * 1.3  # +1.5..+1.8 ms and 1.3x
        run["comparisons"] = round_comparisons(run["figures"])
    slow.update(summarize_rounds(slow["rounds"]))
    assert targets_of(fake_results(paired=slow))["service_latency"].status == MISS


def test_without_paired_rounds_the_targets_fall_back_to_the_sections_and_say_why():
    old = targets_of(fake_results())  # a run from before the paired rounds
    assert old["service_latency"].detail == "5.80 ms vs 5.00 ms (+0.80 ms); not paired: no paired rounds in this run"
    assert old["service_latency"].name == "service [litert] p50 @c1 / in-process request p50"
    assert old["service_latency_unpaired"].status == SKIP
    assert old["service_latency_unpaired"].detail == "not paired (no paired rounds in this run): the target above is this one"
    skipped = targets_of(fake_results(paired={"skipped": "--skip-paired"}))
    assert skipped["http_throughput"].detail.endswith("; not paired: --skip-paired") and skipped["http_throughput"].status == MISS


def test_skip_http_leaves_the_http_targets_skipped_and_the_service_ones_paired():
    reason = "--skip-http"
    paired = paired_section()
    for run in paired["rounds"]:
        for key in ("http_c1_p50_ms", "http_c16_ips"):
            run["figures"].pop(key)
        run["comparisons"] = round_comparisons(run["figures"])
    paired.update(summarize_rounds(paired["rounds"]), skipped_steps={"http_c1": reason, "http_c16": reason})
    got = targets_of(fake_results(http={"skipped": reason}, paired=paired))
    assert got["http_latency"].status == SKIP and got["http_latency"].detail == "skipped: --skip-http"
    assert got["http_throughput"].status == SKIP and got["http_throughput"].detail == "skipped: --skip-http"
    assert got["service_latency"].name.endswith("(paired rounds)") and got["service_latency"].status == PASS
    assert got["service_throughput"].name.endswith("; paired rounds)")


def test_a_left_out_step_is_named_where_the_sections_have_the_figure():
    """No busy-cores limit (TensorFlow): the service's throughput falls back to the arithmetic limit and says why."""
    paired = paired_section(skipped_steps={"limit": "the backend's model runs on tensorflow: no flatbuffer for plain interpreters"})
    for run in paired["rounds"]:
        run["figures"].pop("limit_ips")
        run["comparisons"] = round_comparisons(run["figures"])
    paired.update(summarize_rounds(paired["rounds"]))
    service = targets_of(fake_results(paired=paired))["service_throughput"]
    assert service.name.endswith("/ pipeline limit (arithmetic: parts timed alone)") and service.measured == pytest.approx(0.9)
    assert service.detail.endswith("; not paired: limit left out (the backend's model runs on tensorflow: no flatbuffer for plain interpreters)")


def test_the_report_shows_every_round_the_medians_and_the_ranges():
    results = fake_results(paired=paired_section())
    rows = report.paired_rows(results)
    assert [row[0] for row in rows] == [1, 2, 3, "median", "range"]
    assert rows[0][:3] == [1, "c a b f d e", 5.0] and rows[1][1] == "e d f b a c"
    header = list(report.PAIRED_HEADERS)
    assert rows[0][header.index("b / a")] == "1.080" and rows[0][header.index("c - a ms")] == "+1.60"
    assert rows[3][header.index("d / f")] == "0.879" and rows[3][header.index("a in-process p50 ms")] == 5.5
    assert rows[4][header.index("b - a ms")] == "+0.30..+0.70" and rows[4][header.index("e / d")] == "0.862..0.909"
    markdown = report.markdown_report(results, evaluate_targets(results))
    assert "Paired rounds [litert] (the four ratio targets; a-f as below, 100 requests at c=1 and 400 at c=16 per step):" in markdown
    assert "| median |  |" in markdown and "paired rounds = ..." in markdown
    assert "Paired rounds" in report.console_report(results, evaluate_targets(results))
    assert report.paired_rows(fake_results()) == []
    assert report.paired_title(fake_results(paired={"skipped": "--skip-paired"})) == "Paired rounds: skipped: --skip-paired."


def test_disturbed_paired_rounds_are_named_above_the_targets():
    assert report.disturbed(fake_results(paired=paired_section())) == []
    assert report.disturbed(fake_results(paired=paired_section(others_cpu_pct=40.0))) == ["the paired rounds (median 40%)"]


def test_the_plan_runs_five_rounds_and_quick_two_with_fewer_requests():
    from tools.bench.plan import make_plan

    default, quick = make_plan(False), make_plan(True)
    assert (default.paired_rounds, default.paired_requests_c1, default.paired_requests_concurrent) == (5, 100, 400)
    assert quick.paired_rounds == 2 and quick.paired_requests_c1 < default.paired_requests_c1
    assert make_plan(True, 3).paired_requests_c1 == quick.paired_requests_c1  # --requests sizes the sections only
