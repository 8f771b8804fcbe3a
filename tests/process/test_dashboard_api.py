"""The JSON API on the dashboard's Flask server with the real backend process: the real model's classes come back.

The other status codes are checked against the stand-in backend in tests/inprocess/test_dashboard_api.py.
"""

from __future__ import annotations

import pytest

from tests.support.dash import post_image
from tests.support.helpers import CAT_CLASSES

pytestmark = pytest.mark.slow


def test_classify_200_returns_predictions_timings_and_round_trip(dashboard_api, backend, chelsea_png):
    http, store = dashboard_api(backend.client_settings)
    response = post_image(http, chelsea_png, "chelsea.png")
    assert response.status_code == 200
    body = response.get_json()
    assert body["predictions"][0]["index"] in CAT_CLASSES
    assert set(body["timings_ms"]) >= {"queue", "decode", "preprocess", "inference", "total"}
    assert body["roundtrip_ms"] > 0 and body["batch_size"] >= 1 and body["model"]
    [row] = store.recent()
    assert row["image"] == "chelsea.png" and row["ok"] == 1 and row["top1_index"] in CAT_CLASSES


def test_classify_accepts_a_raw_body(dashboard_api, backend, coffee_png):
    http, _ = dashboard_api(backend.client_settings)
    response = http.post("/api/v1/classify?name=coffee.png", data=coffee_png, content_type="image/png")
    assert response.status_code == 200 and response.get_json()["predictions"][0]["label"] == "espresso"
    assert response.get_json()["image"] == "coffee.png"
