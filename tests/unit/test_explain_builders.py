"""Every number explained, confidence visible: the builders of result cards, the status bar and the monolith panel,
checked as plain component trees (what a user would read, hover and tab to), without a browser."""

from __future__ import annotations

import dash_bootstrap_components as dbc
import pytest
from dash import html

from dashboard.classify.controller import results_view
from dashboard.classify.figures import (BAR_COLOR, TOP_BAR_COLOR, UNSURE_BAR_COLOR, UNSURE_TOP_BAR_COLOR, is_unsure,
                                        top_k_figure)
from dashboard.classify.layout import CARD_STAGES, result_card, tile_card
from dashboard.classify.uploads import Outcome
from dashboard.common.formatting import format_ms
from dashboard.common.glossary import MONOLITH_TERMS, SERVICE_TERMS, STATUS_TERMS
from dashboard.monolith.layout import REST_LABEL, monolith_result
from dashboard.settings import DashboardSettings, SettingsError, settings_from
from dashboard.status.controller import explained_facts_view
from dashboard.status.layout import EXPLAINED_FACTS, explained_facts, runtime_help, status_bar, status_section
from model_backend.protocol import ClassifyReply
from tests.support.helpers import text_of

TIMINGS = {"queue": 1.2, "decode": 3.0, "preprocess": 1.5, "inference": 20.0, "total": 26.0}


def outcome(top_p: float, name: str = "cat.png") -> Outcome:
    predictions = [{"index": 285, "label": "Egyptian cat", "p": top_p}, {"index": 281, "label": "tabby", "p": 0.01}]
    return Outcome(name, "ab" * 32, True, latency_ms=31.5, reply=ClassifyReply.from_wire(
        {"predictions": predictions, "batch_size": 2, "model": "efficientnet-lite0", "timings_ms": TIMINGS}))


def walk(component):
    """Every component in a tree, depth first."""
    if isinstance(component, (list, tuple)):
        for child in component:
            yield from walk(child)
        return
    if component is None or isinstance(component, (str, int, float)):
        return
    yield component
    yield from walk(getattr(component, "children", None))


def tooltips(tree) -> dict[str, str]:
    """Tooltip target id -> the tooltip's text."""
    return {c.target: c.children for c in walk(tree) if isinstance(c, dbc.Tooltip)}


def by_id(tree, component_id: str):
    return next(c for c in walk(tree) if getattr(c, "id", None) == component_id)


def rows(table) -> list[tuple[str, str]]:
    """(label, value) of each row of a stage table, as read on screen."""
    result = []
    for row in (c for c in walk(table) if isinstance(c, html.Tr)):
        label_cell, value_cell = row.children
        label = next(c.children for c in walk(label_cell) if isinstance(c, html.Span) and isinstance(c.children, str)
                     and not getattr(c, "hidden", False))
        result.append((label, value_cell.children))
    return result


# --- confidence --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("top_p", "unsure"), [(0.2999, True), (0.30, False), (0.3001, False), (0.0, True), (1.0, False)])
def test_unsure_means_strictly_below_the_threshold(top_p, unsure):
    assert is_unsure(top_p, 0.30) is unsure


def test_a_threshold_of_zero_marks_nothing_and_no_reply_is_not_unsure():
    assert not is_unsure(0.0, 0.0)
    assert not is_unsure(None, 0.30)


def test_unsure_bars_are_muted_and_sure_bars_are_not():
    predictions = [{"index": 422, "label": "barbell", "p": 0.14}, {"index": 543, "label": "dumbbell", "p": 0.12}]
    assert list(top_k_figure(predictions, unsure=True).data[0].marker.color) == [UNSURE_TOP_BAR_COLOR, UNSURE_BAR_COLOR]
    assert list(top_k_figure(predictions).data[0].marker.color) == [TOP_BAR_COLOR, BAR_COLOR]


def test_an_unsure_card_has_a_badge_whose_tooltip_says_the_threshold():
    card = result_card(outcome(0.14), unsure_below=0.30, key=3)
    badge = by_id(card, "result-3-unsure")
    assert badge.children == "unsure" and badge.tabIndex == 0
    tip = tooltips(card)["result-3-unsure"]
    assert "14.0%" in tip and "threshold of 30%" in tip and "unsure_below" in tip
    assert by_id(card, "result-3-unsure-help").children == tip  # what a screen reader hears
    graph = next(c for c in walk(card) if type(c).__name__ == "Graph")
    assert graph.figure.data[0].marker.color[0] == UNSURE_TOP_BAR_COLOR


def test_a_card_at_the_threshold_is_not_unsure():
    card = result_card(outcome(0.30), unsure_below=0.30)
    assert "unsure" not in text_of(card)
    assert "result-0-unsure" not in tooltips(card)


def test_results_view_uses_the_threshold_it_is_given_and_keeps_tooltip_ids_unique():
    # Several images show as tiles (drawn compact; each opens to its full card, see test_results_session.py).
    tiles, _alert, _options, _value = results_view([outcome(0.5, "a.png"), outcome(0.5, "b.png")], unsure_below=0.6)
    assert all("unsure" in text_of(tile) for tile in tiles)
    cards = [tile_card(outcome(0.5, name), unsure_below=0.6, key=key) for key, name in enumerate(("a.png", "b.png"))]
    cards.append(result_card(outcome(0.5), unsure_below=0.6, key=0))  # the newest drop's full card, on the same page
    ids = [target for card in cards for target in tooltips(card)]
    assert len(ids) == len(set(ids)) == 3 * (len(CARD_STAGES) + 4)  # stages, total, round trip, batch size, badge
    assert "unsure" not in text_of(results_view([outcome(0.5)])[0][0])  # the default threshold is 0.30


# --- every number explained --------------------------------------------------------------------------------------

def test_every_number_on_a_result_card_has_its_definition():
    card = result_card(outcome(0.8), key=0)
    tips = tooltips(card)
    for key in [stage for stage, _ in CARD_STAGES] + ["total", "roundtrip", "batch_size"]:
        assert tips[f"result-0-{key}"] == SERVICE_TERMS[key]
        term = by_id(card, f"result-0-{key}")
        assert term.tabIndex == 0 and getattr(term, "aria-describedby") == f"result-0-{key}-help"
    assert "backend total" in text_of(card) and "round trip" in text_of(card)
    assert "forward pass" in tips["result-0-inference"] and "trip both ways" in tips["result-0-roundtrip"]


READY = {"reachable": True, "ready": True, "model": "efficientnet-lite0", "uptime_s": 65, "requests_served": 7,
         "max_batch": 16, "max_wait_ms": 2, "queue_size": 256}


def test_status_bar_shows_the_depth_now_and_labels_the_capacity():
    status = {**READY, "in_flight": 3, "runtime": "litert", "runtime_reason": "The LiteRT conversion verified against Keras."}
    facts = explained_facts(status)
    assert facts["in_flight"] == "3 of 256 max" and EXPLAINED_FACTS["in_flight"] == "requests in flight"
    assert facts["capacity"] is None  # the capacity is inside "3 of 256 max", not a bare "queue 256"
    assert facts["runtime"] == "litert" and facts["batching"] == "up to 16 images, waits ≤ 2 ms"
    assert runtime_help(status) == STATUS_TERMS["runtime"] + " The LiteRT conversion verified against Keras."
    state = text_of(status_bar(status))
    assert "Backend ready" in state and "efficientnet-lite0" in state and "1 min 5 s" in state and '"7"' in state


def test_every_explained_fact_has_a_label_a_definition_and_a_slot_that_stays_in_the_page():
    section = status_section(DashboardSettings())
    tips = tooltips(section)
    for key, label in EXPLAINED_FACTS.items():
        assert tips[f"status-term-{key}"] == STATUS_TERMS[key]
        assert by_id(section, f"status-fact-{key}").style == {"display": "none"}  # until a ready status fills it
        assert label in text_of(by_id(section, f"status-fact-{key}"))
    values, styles, _ = explained_facts_view({**READY, "in_flight": 0})
    shown = [key for key, style in zip(EXPLAINED_FACTS, styles) if style != {"display": "none"}]
    assert shown == ["batching", "in_flight"] and values[list(EXPLAINED_FACTS).index("in_flight")] == "0 of 256 max"


def test_status_bar_without_a_reported_depth_says_capacity():
    facts = explained_facts(READY)
    assert facts["capacity"] == "256" and EXPLAINED_FACTS["capacity"] == "queue capacity" and facts["in_flight"] is None


def test_status_bar_of_a_broker_shows_its_waiting_line_and_its_workers():
    status = {**READY, "broker": True, "queue_size": 1024, "waiting": 5, "in_flight": 4,
              "workers": [{"pid": 1, "capacity": 2, "in_flight": 2}] * 2}
    facts = explained_facts(status)
    assert facts["broker_waiting"] == "5 of 1024 max" and facts["broker_in_flight"] == "4" and facts["in_flight"] is None
    state = text_of(status_bar(status))
    assert '"workers "' in state and '"2"' in state and "pid" not in state  # the workers' list is counted, not printed


@pytest.mark.parametrize("forged", [True, -1, 2.5, "many", None, [1]])
def test_status_bar_shows_no_depth_it_cannot_trust(forged):
    facts = explained_facts({**READY, "in_flight": forged})
    assert facts["in_flight"] is None and facts["capacity"] == "256"


def test_no_explained_fact_shows_while_the_backend_is_down_or_warming_up():
    for status in ({"reachable": False, "error": "down"}, {"reachable": True, "ready": False, "in_flight": 1}):
        assert set(explained_facts({**status, "queue_size": 256}).values()) == {None}


def test_monolith_rows_add_up_to_the_wall_clock():
    timings = {"startup": 1204.0, "import": 2500.0, "model_load": 800.0, "preprocess": 20.0, "inference": 750.0,
               "total": 5274.0}
    panel = monolith_result({"model": "efficientnet-lite0", "runtime": "tensorflow", "timings_ms": timings,
                             "predictions": [{"index": 285, "label": "Egyptian cat", "p": 0.8}]}, 4960.0, "cat.png")
    table = next(c for c in walk(panel) if isinstance(c, html.Table))
    shown = rows(table)
    assert [label for label, _ in shown] == ["import TensorFlow", "build + load model", "decode + preprocess",
                                             "inference (cold)", REST_LABEL, "wall clock (what you waited)"]
    rest = 4960.0 - (2500.0 + 800.0 + 20.0 + 750.0)
    assert dict(shown)[REST_LABEL] == format_ms(rest) == "890 ms"
    assert dict(shown)["wall clock (what you waited)"] == "4.96 s"
    assert tooltips(panel)["monolith-rest"] == MONOLITH_TERMS["rest"]
    assert "TensorFlow's shutdown" in MONOLITH_TERMS["rest"]
    assert '"tensorflow"' in text_of(panel)  # the monolith's runtime, named


def test_monolith_rest_is_never_negative_and_without_a_wall_clock_the_reported_total_is_shown():
    timings = {"import": 2500.0, "model_load": 800.0, "preprocess": 20.0, "inference": 750.0, "total": 4300.0}
    result = {"model": "m", "timings_ms": timings, "predictions": [{"label": "cat", "p": 0.8}]}
    shown = dict(rows(next(c for c in walk(monolith_result(result, 3000.0, "x")) if isinstance(c, html.Table))))
    assert shown[REST_LABEL] == format_ms(0.0)
    shown = dict(rows(next(c for c in walk(monolith_result(result, None, "x")) if isinstance(c, html.Table))))
    assert REST_LABEL not in shown and shown["total (reported)"] == "4.30 s"


# --- the setting -------------------------------------------------------------------------------------------------

def test_unsure_below_is_a_setting_with_a_flag_and_a_variable():
    assert DashboardSettings().unsure_below == 0.30
    assert settings_from({"unsure_below": 0.5}, {}).unsure_below == 0.5
    assert settings_from({}, {"WARMSERVE_DASH_UNSURE_BELOW": "0.2"}).unsure_below == 0.2
    assert settings_from({"unsure_below": 0.5}, {"WARMSERVE_DASH_UNSURE_BELOW": "0.2"}).unsure_below == 0.5
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(SettingsError, match="unsure_below"):
            DashboardSettings(unsure_below=bad)


def test_a_monolith_run_is_compared_with_service_requests_that_ran_alone_when_there_are_any():
    from dashboard.monolith.controller import service_baseline

    summary = {"service": {"p50": 339.0}, "groups": {"alone": {"p50": 24.0}, "loaded": {"p50": 339.0}}}
    p50, text = service_baseline(summary)
    assert p50 == 24.0 and "ran alone" in text
    p50, text = service_baseline({"service": {"p50": 339.0}, "groups": {"alone": {"p50": None}}})
    assert p50 == 339.0 and "all requests" in text
    panel = text_of(monolith_result({"model": "m", "timings_ms": {"import": 1.0}, "predictions": [{"label": "c", "p": 1}]},
                                    4800.0, "x", 24.0, "the median round trip of service requests that ran alone"))
    assert "200× the median round trip of service requests that ran alone (24.0 ms)" in panel


@pytest.mark.parametrize(("execution", "expected"), [
    ("adaptive", "none: a lone image on all cores"), ("pool", "none: one image per interpreter"),
    ("batched", "up to 16 images, waits ≤ 2 ms"), (None, "up to 16 images, waits ≤ 2 ms")])
def test_the_status_bar_says_batching_only_where_the_backend_batches(execution, expected) -> None:
    from dashboard.status.layout import batching_text

    assert batching_text({"execution": execution, "max_batch": 16, "max_wait_ms": 2}).startswith(expected)
