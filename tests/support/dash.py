"""Dashboard test plumbing: Chromium options for dash_duo, and the dashboard fixtures every layer may use.

tests/conftest.py loads it as a plugin (``pytest_plugins``); ``__all__`` names the hook and the fixtures.
Chromium runs as root here, so it needs --no-sandbox; with no display it must be headless whether or not
``--headless`` was given. The in-process backend for dashboard tests (``standin_server``) is in tests/support/servers.py.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from tests.support.helpers import ROOT, png_bytes

__all__ = ["pytest_setup_options", "dash_settings", "dashboard_api", "silent_backend", "artifacts_dir"]

#: an 8 x 8 black PNG: the smallest real image for a stub backend
TINY_PNG = png_bytes(np.zeros((8, 8, 3), dtype=np.uint8))

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")

#: what a browser could forge: paths (a file-existence oracle), traversal, URLs (a download), options, odd types
HOSTILE = ["/etc/passwd.keras", "../x", "../../etc/passwd", "https://evil.example/model.keras", "--weights=/etc/passwd",
           "resnet50", "a" * 64 + "/../x", "A" * 64, "g" * 64, ["a"] * 64, {"model": "/etc/passwd.keras"}, 12345, None, ""]


class StubClient:
    """A backend client that answers like a ready backend (no sockets), and counts classify calls."""

    def __init__(self) -> None:
        self.classified = 0

    def ping(self) -> dict:
        return {"ok": True, "ready": True, "model": "stub"}

    def info(self) -> dict:
        return {"ok": True, "ready": True, "model": "stub", "max_batch": 8, "max_wait_ms": 2, "queue_size": 0,
                "uptime_s": 5, "requests_served": self.classified}

    def classify(self, image_bytes: bytes, top_k: int = 5) -> dict:
        self.classified += 1
        return {"ok": True, "predictions": [{"index": 285, "label": "Egyptian cat", "p": 0.8}], "model": "stub",
                "timings_ms": {"queue": 0.1, "decode": 0.1, "preprocess": 0.1, "inference": 1.0, "total": 1.3},
                "batch_size": 1, "roundtrip_ms": 2.0}

    def close(self) -> None:
        pass


def pytest_setup_options():
    """dash.testing's hook: the Chrome options dash_duo starts the browser with."""
    from selenium.webdriver.chrome.options import Options

    options = Options()
    for argument in ("--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,2600"):
        options.add_argument(argument)
    if not os.environ.get("DISPLAY"):
        options.add_argument("--headless=new")
    binary = os.environ.get("DASH_TEST_CHROMEPATH") or next((p for p in CHROMIUM_CANDIDATES if os.path.exists(p)), None)
    if binary:
        options.binary_location = binary
    return options


@pytest.fixture
def dash_settings(tmp_path):
    """DashboardSettings with a private data dir; pass overrides as keywords."""
    from dashboard.settings import DashboardSettings

    def make(**overrides) -> DashboardSettings:
        overrides.setdefault("data_dir", tmp_path / "data")
        return DashboardSettings(**overrides)

    return make


@pytest.fixture
def dashboard_api(dash_settings):
    """dashboard_api(client_settings, **dashboard_settings) -> (Flask test client, HistoryStore), clients closed after."""
    from dashboard.app import create_app
    from model_backend.client import BackendClient

    clients = []

    def make(client_settings, **overrides):
        client = BackendClient(client_settings)
        clients.append(client)
        app = create_app(dash_settings(**overrides), client)
        return app.server.test_client(), app.server.extensions["warmserve"]["store"]

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def stub_dashboard(dash_settings):
    """stub_dashboard(**dashboard_settings) -> (Flask test client, HistoryStore, StubClient); apps stopped after."""
    from dashboard.app import create_app, stop_app

    apps = []

    def make(**overrides):
        client = StubClient()
        app = create_app(dash_settings(**overrides), client)
        apps.append(app)
        return app.server.test_client(), app.server.extensions["warmserve"]["store"], client

    yield make
    for app in apps:
        stop_app(app)


def basic_auth(name: str, password: str) -> dict:
    """The Authorization header a browser sends for ``name:password``."""
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


def post_image(http, data: bytes, name: str = "photo.png", **kwargs):
    """POST an image to the JSON API as a multipart upload."""
    return http.post("/api/v1/classify", data={"image": (io.BytesIO(data), name)}, content_type="multipart/form-data",
                     **kwargs)


def assert_error(response, status: int, code: str) -> dict:
    """The API's JSON error with this status and code (and a message); returns the error object."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json, response.get_data(as_text=True)[:200]
    error = response.get_json()["error"]
    assert error["code"] == code and error["message"]
    return error


@pytest.fixture
def silent_backend():
    """A ZeroMQ ROUTER that accepts requests and never replies: the client must time out (504)."""
    import zmq

    context = zmq.Context.instance()
    router = context.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    stop = threading.Event()

    def swallow() -> None:
        while not stop.is_set():
            if router.poll(50):
                router.recv_multipart()

    thread = threading.Thread(target=swallow, daemon=True)
    thread.start()
    yield f"tcp://127.0.0.1:{port}"
    stop.set()
    thread.join(5)
    router.close(linger=0)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def chromium_available() -> bool:
    return bool(shutil.which("chromedriver")) and any(os.path.exists(p) for p in CHROMIUM_CANDIDATES)
