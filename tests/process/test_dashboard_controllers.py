"""The features' controllers (what the callbacks call) with the real backend process: real classes, examples.

The rest (status, a backend down then back, the monolith's first step) is in tests/inprocess/test_dashboard_controllers.py.
"""

from __future__ import annotations

import pytest

from dashboard.classify import controller as classify
from dashboard.history import controller as history
from dashboard.history.store import HistoryStore
from model_backend.client import BackendClient
from tests.support.helpers import CAT_CLASSES, data_url, text_of

pytestmark = pytest.mark.slow


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

    view = history.history_view(store)
    assert view.signature[0] == 3 and "notes.txt" in text_of(view.table)
    assert '"service-count"' in text_of(view.summary)
    assert sum(len(trace.y) for trace in view.time_figure.data if trace.name.startswith("service")) == 2
    csv_download = history.history_csv(store)
    assert csv_download["filename"].endswith(".csv") and "chelsea.png" in csv_download["content"]


def test_examples_can_be_classified_and_only_real_examples(real):
    settings, client, store = real
    [outcome] = classify.classify_example(settings, client, store, "chelsea.jpg")
    assert outcome.ok and outcome.predictions[0]["index"] in CAT_CLASSES and outcome.source == "example"
    assert classify.classify_example(settings, client, store, "../settings.py") == []
