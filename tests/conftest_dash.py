"""Dashboard test plumbing: Chromium options for dash_duo, and fixtures shared by tests/test_dashboard_*.py.

Load it by ending tests/conftest.py with ``from tests.conftest_dash import *  # noqa: F401,F403``
(``__all__`` limits that to the hook and the fixtures), or pass ``-p tests.conftest_dash`` to
``python -m pytest``. Chromium runs as root here, so it needs --no-sandbox;
with no display it must be headless whether or not ``--headless`` was given.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
from pathlib import Path

import pytest

__all__ = ["pytest_setup_options", "dash_settings", "silent_backend", "standin_server", "artifacts_dir"]

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")


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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def dash_settings(tmp_path):
    """DashboardSettings with a private data dir; pass overrides as keywords."""
    from dashboard.settings import DashboardSettings

    def make(**overrides) -> DashboardSettings:
        overrides.setdefault("data_dir", tmp_path / "data")
        return DashboardSettings(**overrides)

    return make


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


@pytest.fixture
def standin_server():
    """Start the real BackendServer in a thread with the numpy stand-in model (fast, no TensorFlow)."""
    from model_backend.server import BackendServer
    from model_backend.settings import ServerSettings
    from tests.standin import StandInClassifier

    running = []

    def start(bind: str = "tcp://127.0.0.1:*", model=None, **settings):
        server = BackendServer(ServerSettings(bind=bind, **settings), model or StandInClassifier())
        address = server.open()
        stop = threading.Event()
        thread = threading.Thread(target=server.serve, args=(stop,), daemon=True)
        thread.start()
        running.append((stop, thread))
        return address

    yield start
    for stop, thread in running:
        stop.set()
        thread.join(10)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def chromium_available() -> bool:
    return bool(shutil.which("chromedriver")) and any(os.path.exists(p) for p in CHROMIUM_CANDIDATES)
