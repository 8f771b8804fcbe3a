"""Figures and UI pieces, built from plain data and checked without a browser."""

from __future__ import annotations

import json
from datetime import timezone

from dashboard.classify.figures import top_k_figure
from dashboard.classify.layout import refusals_alert, result_card
from dashboard.classify.uploads import Outcome
from dashboard.common.figures import empty_figure
from dashboard.common.formatting import format_ms
from dashboard.history.figures import time_figure
from dashboard.history.layout import summary_view
from dashboard.monolith.layout import monolith_result
from dashboard.status.layout import explained_facts, status_bar
from model_backend.protocol import ClassifyReply

PREDICTIONS = [
    {"index": 281, "label": "tabby", "p": 0.05},
    {"index": 285, "label": "Egyptian cat", "p": 0.80},
    {"index": 282, "label": "tiger cat", "p": 0.10},
]


def text_of(component) -> str:
    """Every string inside a Dash component tree (what a user would read)."""
    return json.dumps(component.to_plotly_json(), default=lambda o: o.to_plotly_json(), ensure_ascii=False)


def test_top_k_bars_are_horizontal_with_the_most_probable_on_top():
    fig = top_k_figure(PREDICTIONS)
    bar = fig.data[0]
    assert bar.orientation == "h"
    assert list(bar.y) == ["Egyptian cat", "tiger cat", "tabby"]
    assert list(bar.x) == [0.80, 0.10, 0.05]
    assert fig.layout.yaxis.autorange == "reversed"  # first category drawn at the top
    assert list(bar.text) == ["80.0%", "10.0%", "5.0%"]


def test_top_k_keeps_repeated_names_apart_and_shortens_long_ones():
    fig = top_k_figure([{"index": 134, "label": "crane", "p": 0.5}, {"index": 517, "label": "crane", "p": 0.3},
                        {"index": 1, "label": "a very long class name that goes on and on", "p": 0.1}])
    assert list(fig.data[0].y)[:2] == ["crane (134)", "crane (517)"]
    assert len(fig.data[0].y[2]) <= 28


def test_empty_history_says_what_to_do():
    fig = time_figure(None, None, (0.0, 1.0), timezone.utc)
    assert "drop an image" in fig.layout.annotations[0].text
    assert empty_figure("nothing").layout.annotations[0].text == "nothing"


def test_format_ms():
    assert format_ms(None) == "—"
    assert format_ms(0.4213) == "0.42 ms"
    assert format_ms(23.14) == "23.1 ms"
    assert format_ms(812.4) == "812 ms"
    assert format_ms(3480) == "3.48 s"


def test_result_card_shows_top_class_round_trip_stages_and_batch():
    outcome = Outcome("cat.png", "ab" * 32, True, latency_ms=31.5, reply=ClassifyReply.from_wire({
        "predictions": sorted(PREDICTIONS, key=lambda p: -p["p"]), "batch_size": 4, "model": "efficientnet-lite0",
        "timings_ms": {"queue": 1.2, "decode": 3.0, "preprocess": 1.5, "inference": 20.0, "total": 26.0}}))
    text = text_of(result_card(outcome))
    for expected in ("cat.png", "Egyptian cat", "80%", "31.5 ms", "queue", "1.20 ms", "inference", "20.0 ms", "\"4\""):
        assert expected in text


def test_refusals_say_what_was_refused_and_why():
    outcomes = [
        Outcome("notes.txt", None, False, error_code="bad_image", error_message="Expected an image. Received: text"),
        Outcome("huge.png", None, False, error_code="too_large", error_message="huge.png is 30.0 MB; the limit is 10.0 MB"),
        Outcome("ok.png", None, True),
    ]
    text = text_of(refusals_alert(outcomes))
    assert "notes.txt" in text and "not an image, or corrupt" in text and "Received: text" in text
    assert "huge.png" in text and "over the size limit" in text and "ok.png" not in text
    assert refusals_alert([Outcome("ok.png", None, True)]) is None


def test_backend_down_refusal_points_at_the_status():
    alert = refusals_alert([Outcome("a.png", None, False, error_code="unavailable", error_message="No backend")])
    assert alert.color == "danger" and "backend down" in text_of(alert)


def test_status_bar_for_each_state():
    down = text_of(status_bar({"reachable": False, "error": "No model backend is answering at tcp://x"}))
    assert "Backend unreachable" in down and "recovers by itself" in down
    assert "warming up" in text_of(status_bar({"reachable": True, "ready": False, "model": "m"}))
    ready = text_of(status_bar({"reachable": True, "ready": True, "model": "efficientnet-lite0",
                                            "uptime_s": 125, "requests_served": 7, "max_batch": 16, "max_wait_ms": 2,
                                            "queue_size": 256}))
    for expected in ("Backend ready", "efficientnet-lite0", "2 min 5 s", "requests served"):
        assert expected in ready
    # Batching (and the queue's depth) are explained facts that stay in the page: explained_facts gives their values.
    assert explained_facts({"reachable": True, "ready": True, "max_batch": 16, "max_wait_ms": 2})["batching"] == \
        "up to 16 images, waits ≤ 2 ms"


def test_summary_compares_like_with_like_and_says_what_succeeded_and_failed():
    groups = {"alone": {"count": 3, "p50": 10.0, "p95": 12.0},
              "loaded": {"count": 9, "p50": 40.0, "p95": 339.0, "batch_min": 2, "batch_max": 16},
              "monolith": {"count": 2, "p50": 4000.0, "p95": 4400.0}}
    summary = {"service": {"count": 12, "errors": 1, "p50": 25.0, "p95": 40.0},
               "monolith": {"count": 2, "errors": 0, "p50": 4000.0, "p95": 4400.0}, "groups": groups,
               "speedup": 400.0, "speedup_loaded": 100.0}
    text = text_of(summary_view(summary, {"runtime": "litert"}))
    for expected in ("Service, alone", "10.0 ms", "Service, under load", "339 ms", "batch 2–16", "4.00 s",
                     "400× faster", "under load: 100× faster", "monolith p50 ÷ service-alone p50",
                     "request's succeeded" if False else "requests succeeded, 1 failed", "runtime: litert",
                     "runtime: tensorflow", "batch size 1 and under 1 ms"):
        assert expected in text, expected
    assert "(1 failed)" not in text
    assert "runtime: not reported" in text_of(summary_view(summary))
    assert "run the monolith once" in text_of(summary_view(
        {"service": {"count": 1}, "monolith": {"count": 0}, "groups": {}, "speedup": None}))


def test_monolith_result_lists_its_stages():
    result = {"model": "efficientnet-lite0", "predictions": PREDICTIONS[1:2],
              "timings_ms": {"import": 2500.0, "model_load": 800.0, "inference": 900.0, "total": 4300.0}}
    text = text_of(monolith_result(result, 4600.0, "cat.png", service_p50=23.0))
    for expected in ("import TensorFlow", "2.50 s", "build + load model", "800 ms", "4.60 s", "200×"):
        assert expected in text
    failed = text_of(monolith_result({"error": {"code": "bad_image", "message": "nope"}}, 900.0, "x"))
    assert "failed" in failed and "nope" in failed
