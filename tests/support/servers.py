"""Servers and brokers running in threads of the test process, and the fixtures that start them.

``serve(model=None, **settings)`` starts the real ``BackendServer`` (with the numpy
stand-in model unless another is given) on a free port and returns a
``RunningServer``; ``standin_server(bind=..., **settings)`` does the same and
returns only its address. Both stop what they started at the end of the test.
``RunningBroker`` is the real ``Broker`` in a thread; the broker tests add
workers to it (worker processes, or fake workers driven frame by frame).
"""

from __future__ import annotations

import threading
import time

import pytest

from model_backend.broker import Broker
from model_backend.client import BackendClient
from model_backend.server import BackendServer
from model_backend.settings import BrokerSettings, ClientSettings, ServerSettings
from tests.support.standin import StandInClassifier

__all__ = ["RunningServer", "RunningBroker", "serve", "standin_server"]

ANY_PORT = "tcp://127.0.0.1:*"
STOP_TIMEOUT_S = 10


class RunningServer:
    """The real BackendServer serving ``model`` (the stand-in by default) in a daemon thread."""

    def __init__(self, model=None, bind: str = ANY_PORT, **settings):
        self.model = model or StandInClassifier()
        self.server = BackendServer(ServerSettings(bind=bind, **settings), self.model)
        self.address = self.server.open()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.server.serve, args=(self.stop,), daemon=True)
        self.thread.start()

    def client(self, **settings) -> BackendClient:
        return BackendClient(ClientSettings(address=self.address, **settings))

    def close(self) -> None:
        self.stop.set()
        self.thread.join(STOP_TIMEOUT_S)
        assert not self.thread.is_alive()


class RunningBroker:
    """The real Broker (frontend and worker ports on free ports) serving in a daemon thread."""

    def __init__(self, heartbeat_ms: int = 200, **settings):
        self.broker = Broker(BrokerSettings(frontend=ANY_PORT, backend=ANY_PORT, heartbeat_ms=heartbeat_ms, **settings))
        self.frontend, self.backend = self.broker.open()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.broker.serve, args=(self.stop,), daemon=True)
        self.thread.start()

    def client(self, **settings) -> BackendClient:
        return BackendClient(ClientSettings(address=self.frontend, **settings))

    def info(self) -> dict:
        with self.client() as client:
            return client.info()

    def wait_for_workers(self, count: int, timeout_s: float = 30, poll_s: float = 0.1) -> dict:
        """The broker's info once it counts ``count`` workers; fails after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        with self.client() as client:
            while True:
                info = client.info()
                if len(info["workers"]) == count:
                    return info
                assert time.monotonic() < deadline, f"expected {count} workers, broker has {info['workers']}"
                time.sleep(poll_s)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(STOP_TIMEOUT_S)
        assert not self.thread.is_alive()


@pytest.fixture
def serve():
    """serve(model=None, **server_settings) -> RunningServer; all of them stopped after the test."""
    running: list[RunningServer] = []

    def start(model=None, **settings) -> RunningServer:
        server = RunningServer(model, **settings)
        running.append(server)
        return server

    yield start
    for server in running:
        server.close()


@pytest.fixture
def standin_server(serve):
    """standin_server(bind=ANY_PORT, model=None, **server_settings) -> the address it serves on (fast, no TensorFlow)."""

    def start(bind: str = ANY_PORT, model=None, **settings) -> str:
        return serve(model, bind=bind, **settings).address

    return start
