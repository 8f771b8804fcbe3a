"""The features' controllers (what the callbacks call) with a real BackendClient: a real backend, a stand-in one, and
none at all."""

from __future__ import annotations

import base64
import json
import time

import pytest

from dashboard.classify import controller as classify
from dashboard.history import controller as history
from dashboard.history.store import HistoryStore
from dashboard.monolith import controller as monolith
from dashboard.status.controller import status_view
from dashboard.status.poller import StatusPoller
from model_backend.client import BackendClient
from model_backend.settings import ClientSettings
from tests.conftest_dash import free_port
from tests.standin import shade_png

CAT_CLASSES = range(281, 286)


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def status_now(settings, client):
    """(status bar, status) as the running dashboard draws them: one check by the poller, then its snapshot."""
    poller = StatusPoller(client, settings.backend, interval_s=1.0, stale_after_s=60.0)
    poller.poll_once()
    return status_view(poller)


def text_of(component) -> str:
    return json.dumps(component.to_plotly_json(), default=lambda o: o.to_plotly_json(), ensure_ascii=False)


@pytest.fixture
def real(backend, dash_settings):
    settings = dash_settings(backend=backend.address)
    with BackendClient(backend.client_settings) as client:
        yield settings, client, HistoryStore(settings.db_path)


def test_a_drop_is_classified_refusals_explained_and_everything_recorded(real, chelsea_png, coffee_png):
    settings, client, store = real
    outcomes = classify.classify_drop(settings, client, store,
                                   [data_url(chelsea_png), data_url(coffee_png), data_url(b"just text", "text/plain")],
                                   ["chelsea.png", "coffee.png", "notes.txt"])
    by_name = {o.name: o for o in outcomes}
    assert by_name["chelsea.png"].predictions[0]["index"] in CAT_CLASSES
    assert by_name["coffee.png"].predictions[0]["label"] == "espresso"
    assert all(by_name[n].reply.batch_size >= 1 and by_name[n].latency_ms > 0 for n in ("chelsea.png", "coffee.png"))
    assert by_name["notes.txt"].error_code == "bad_image"

    cards, alert, options, selected = classify.results_view(outcomes)
    assert len(cards) == 2
    assert by_name["chelsea.png"].predictions[0]["label"] in text_of(cards[0])
    assert "notes.txt" in text_of(alert) and by_name["notes.txt"].error_message in text_of(alert)
    assert [o["label"] for o in options] == ["chelsea.png", "coffee.png"] and selected == by_name["chelsea.png"].sha256

    figure, summary, table, signature = history.history_view(store)
    assert signature[0] == 3 and "notes.txt" in text_of(table)
    assert '"service-count"' in text_of(summary)
    assert [trace.name for trace in figure.data][0] == "service (warm backend)" and len(figure.data[0].y) == 2
    csv_download = history.history_csv(store)
    assert csv_download["filename"].endswith(".csv") and "chelsea.png" in csv_download["content"]


def test_examples_can_be_classified_and_only_real_examples(real):
    settings, client, store = real
    [outcome] = classify.classify_example(settings, client, store, "chelsea.jpg")
    assert outcome.ok and outcome.predictions[0]["index"] in CAT_CLASSES and outcome.source == "example"
    assert classify.classify_example(settings, client, store, "../settings.py") == []


def test_status_shows_a_ready_backend(real):
    settings, client, _ = real
    bar, status = status_now(settings, client)
    assert status["ready"] and status["reachable"] and status["model"] and status["max_batch"] >= 1
    assert "Backend ready" in text_of(bar) and status["model"] in text_of(bar)


def test_backend_down_then_back_recovers_without_restarting_anything(dash_settings, standin_server):
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    settings = dash_settings(backend=address)
    store = HistoryStore(settings.db_path)
    with BackendClient(ClientSettings(address=address, connect_timeout_ms=300, ping_timeout_ms=300)) as client:
        bar, status = status_now(settings, client)
        assert not status["reachable"] and "Backend unreachable" in text_of(bar)
        [down] = classify.classify_drop(settings, client, store, [data_url(shade_png(3))], ["red.png"])
        assert down.error_code == "unavailable"
        assert "backend down" in text_of(classify.results_view([down])[1])

        standin_server(bind=address)  # the backend comes back on the same address
        deadline = time.monotonic() + 15
        while not status["ready"] and time.monotonic() < deadline:
            _, status = status_now(settings, client)
        assert status["ready"] and status["model"] == "stand-in"
        [up] = classify.classify_drop(settings, client, store, [data_url(shade_png(3))], ["red.png"])
        assert up.ok and up.predictions[0]["label"] == "shade-3"
    assert [r["ok"] for r in store.recent()] == [1, 0]


def test_monolith_needs_a_classified_image_first(dash_settings):
    settings = dash_settings()
    panel = monolith.run_monolith_view(settings, HistoryStore(settings.db_path), None)
    assert "Classify an image first" in text_of(panel)
