"""The JSON API on the dashboard's Flask server: every status code, against the stand-in backend and broken ones.

The stand-in backend (tests/support/servers.py) is the real BackendServer with a numpy model, in a thread: no
TensorFlow. The replies that need the real model's classes are in tests/process/test_dashboard_api.py.
"""

from __future__ import annotations

import base64
import io

import pytest

from dashboard.app import create_app
from model_backend.settings import ClientSettings
from tests.support.dash import assert_error, post_image
from tests.support.helpers import free_port


@pytest.fixture
def standin(standin_server) -> ClientSettings:
    """Client settings for a stand-in backend, as ``backend.client_settings`` are for the real one."""
    return ClientSettings(address=standin_server(), timeout_ms=20_000, retries=0)


def test_400_for_something_that_is_not_an_image(dashboard_api, standin):
    http, store = dashboard_api(standin)
    error = assert_error(post_image(http, b"hello, this is text", "notes.txt"), 400, "bad_image")
    [row] = store.recent()
    assert row["ok"] == 0 and row["error_code"] == "bad_image" and row["error_message"] == error["message"]


def test_400_for_a_request_without_an_image(dashboard_api, standin):
    http, _ = dashboard_api(standin)
    assert_error(http.post("/api/v1/classify", data={"file": (io.BytesIO(b"x"), "a.png")},
                           content_type="multipart/form-data"), 400, "bad_request")
    assert_error(http.post("/api/v1/classify", data=b""), 400, "bad_request")


def test_413_from_the_web_tier_as_json(dashboard_api, standin):
    http, store = dashboard_api(standin, max_image_bytes=1024 * 1024)
    error = assert_error(post_image(http, b"\xff" * (2 * 1024 * 1024)), 413, "too_large")
    assert "1 MB" in error["message"]
    # just over the per-image limit but under the request limit: refused before the backend, and recorded
    assert_error(http.post("/api/v1/classify", data=b"\xff" * (1024 * 1024 + 10)), 413, "too_large")
    assert store.recent()[0]["error_code"] == "too_large"


def test_503_when_nothing_listens(dashboard_api):
    http, _ = dashboard_api(ClientSettings(address=f"tcp://127.0.0.1:{free_port()}", connect_timeout_ms=200, ping_timeout_ms=200))
    assert_error(post_image(http, b"\x89PNG"), 503, "unavailable")
    health = http.get("/api/v1/health")
    assert_error(health, 503, "unavailable")
    assert health.get_json()["status"] == "unavailable"


def test_504_when_the_backend_never_replies(dashboard_api, silent_backend):
    http, store = dashboard_api(ClientSettings(address=silent_backend, timeout_ms=1, retries=0, ping_timeout_ms=100))
    assert_error(post_image(http, b"\x89PNG"), 504, "timeout")
    assert store.recent()[0]["error_code"] == "timeout"


def test_health_200_when_ready(dashboard_api, standin):
    http, _ = dashboard_api(standin)
    response = http.get("/api/v1/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ready" and body["backend"]["ready"] and body["backend"]["model"]
    assert body["backend"]["max_batch"] >= 1


def test_history_returns_recent_records(dashboard_api, standin, chelsea_png):
    http, _ = dashboard_api(standin)
    post_image(http, chelsea_png, "one.png")
    post_image(http, b"junk", "two.txt")
    body = http.get("/api/v1/history?limit=1").get_json()
    assert body["count"] == 1 and body["records"][0]["image"] == "two.txt"
    assert body["summary"]["service"]["count"] == 1
    assert http.get("/api/v1/history?kind=service").get_json()["count"] == 2
    assert_error(http.get("/api/v1/history?limit=0"), 400, "bad_request")
    assert_error(http.get("/api/v1/history?limit=many"), 400, "bad_request")
    assert_error(http.get("/api/v1/nothing-here"), 404, "not_found")
    assert_error(http.get("/api/v1/classify"), 405, "method_not_allowed")


def test_basic_auth_protects_pages_and_api(dashboard_api, standin, chelsea_png):
    http, _ = dashboard_api(standin, users=(("alice", "s3cret"),))

    def auth(user: str, password: str) -> dict:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}

    assert http.get("/").status_code == 401
    assert_error(http.get("/api/v1/health"), 401, "unauthorized")
    assert_error(post_image(http, chelsea_png), 401, "unauthorized")
    assert_error(http.get("/api/v1/history", headers=auth("alice", "wrong")), 401, "unauthorized")
    assert_error(http.get("/api/v1/history", headers={"Authorization": "Basic !!!"}), 401, "unauthorized")
    assert http.get("/api/v1/history", headers=auth("alice", "s3cret")).status_code == 200
    assert http.get("/", headers=auth("alice", "s3cret")).status_code == 200
    assert post_image(http, chelsea_png, headers=auth("alice", "s3cret")).status_code == 200


def test_dash_callback_route_may_carry_several_images_but_the_api_may_not(dashboard_api):
    http, _ = dashboard_api(ClientSettings(address=f"tcp://127.0.0.1:{free_port()}"), max_image_bytes=1024 * 1024)
    body = b'{"output": "x", "inputs": [], "padding": "' + b"A" * (2 * 1024 * 1024) + b'"}'
    dash_reply = http.post("/_dash-update-component", data=body, content_type="application/json")
    assert dash_reply.status_code != 413  # uploads travel base64-encoded, several per drop
    assert_error(http.post("/api/v1/classify", data=body), 413, "too_large")


class GatedClient:
    """A backend client whose ping blocks until the test opens the gate; counts the calls."""

    def __init__(self) -> None:
        import threading

        self.gate = threading.Event()
        self.pings = 0
        self.ready = True

    def ping(self) -> dict:
        from model_backend.errors import BackendTimeout

        self.pings += 1
        if not self.gate.wait(30):
            raise BackendTimeout("no reply")
        return {"ok": True, "ready": self.ready, "model": "stub"}

    def info(self) -> dict:
        return {"ok": True, "ready": self.ready, "model": "stub", "max_batch": 4}


def test_health_answers_from_the_pollers_state_and_says_when_it_is_stale(dash_settings):
    import time

    from dashboard.app import stop_app

    client = GatedClient()
    app = create_app(dash_settings(status_interval_ms=250), client)
    http = app.server.test_client()
    try:
        for _ in range(5):  # the poller's check is stuck: health still answers at once, and never calls the backend
            started = time.monotonic()
            response = http.get("/api/v1/health")
            assert time.monotonic() - started < 1.0
            assert_error(response, 503, "unavailable")
        assert client.pings == 1
        poller = app.server.extensions["warmserve"]["poller"]
        poller.stale_after_s = 0.05
        time.sleep(0.1)
        stale = http.get("/api/v1/health")
        assert_error(stale, 503, "stale")
        assert stale.get_json()["status"] == "stale" and stale.get_json()["age_s"] >= 0.05
        poller.stale_after_s = 60
        client.gate.set()  # the backend answers: the poller's next state is ready
        deadline = time.monotonic() + 5
        while http.get("/api/v1/health").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        body = http.get("/api/v1/health").get_json()
        assert body["status"] == "ready" and body["backend"]["model"] == "stub" and body["age_s"] < 5
    finally:
        client.gate.set()
        stop_app(app)
