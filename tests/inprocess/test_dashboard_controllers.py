"""The features' controllers (what the callbacks call) with a real BackendClient: a stand-in backend, and none at all.

The controllers with the real backend process (real classes) are in tests/process/test_dashboard_controllers.py.
"""

from __future__ import annotations

import time

import pytest

from dashboard.classify import controller as classify
from dashboard.history.store import HistoryStore
from dashboard.monolith import controller as monolith
from dashboard.status.controller import status_view
from dashboard.status.poller import StatusPoller
from model_backend.client import BackendClient
from model_backend.settings import ClientSettings
from tests.support.helpers import data_url, free_port, text_of
from tests.support.standin import shade_png


def status_now(settings, client):
    """(status bar, status) as the running dashboard draws them: one check by the poller, then its snapshot."""
    poller = StatusPoller(client, settings.backend, interval_s=1.0, stale_after_s=60.0)
    poller.poll_once()
    return status_view(poller)


@pytest.fixture
def standin(standin_server, dash_settings):
    """(settings, client, store) for a stand-in backend (no TensorFlow)."""
    address = standin_server()
    settings = dash_settings(backend=address)
    with BackendClient(ClientSettings(address=address, timeout_ms=20_000, retries=0)) as client:
        yield settings, client, HistoryStore(settings.db_path)


def test_status_shows_a_ready_backend(standin):
    settings, client, _ = standin
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
