"""CURVE at a broker: workers register only with a worker key, clients send only with a client key.

Broker and workers run in-process (the real Broker and BackendServer in worker mode,
with the numpy stand-in model); every hop is real ZeroMQ over tcp://127.0.0.1.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from model_backend import keys_command
from model_backend.broker import Broker
from model_backend.client import BackendClient
from model_backend.errors import BackendUnavailable
from model_backend.server import BackendServer
from model_backend.settings import BrokerSettings, ClientSettings, ServerSettings
from tests.support.helpers import folder_with
from tests.support.standin import StandInClassifier, shade_png

HEARTBEAT_MS = 100
#: a refused worker has had many READY attempts by then (open + every few heartbeats)
REGISTRATION_WINDOW_S = 1.5


class Running:
    """Things serving in threads of this process, stopped at the end."""

    def __init__(self):
        self._stops: list[tuple[threading.Event, threading.Thread]] = []

    def start(self, target, *args) -> None:
        stop = threading.Event()
        thread = threading.Thread(target=target, args=(*args, stop), daemon=True)
        thread.start()
        self._stops.append((stop, thread))

    def close(self) -> None:
        for stop, thread in reversed(self._stops):
            stop.set()
            thread.join(10)


@pytest.fixture
def running():
    things = Running()
    yield things
    things.close()


@pytest.fixture
def broker(keys, running):
    instance = Broker(BrokerSettings(frontend="tcp://127.0.0.1:*", backend="tcp://127.0.0.1:*", keys_dir=keys, heartbeat_ms=HEARTBEAT_MS))
    frontend, backend = instance.open()
    running.start(lambda stop: instance.serve(stop))
    return frontend, backend


def start_worker(running: Running, backend_address: str, keys_dir: Path | None) -> None:
    worker = BackendServer(ServerSettings(connect=backend_address, keys_dir=keys_dir, max_batch=4, heartbeat_ms=HEARTBEAT_MS),
                           StandInClassifier())
    worker.open()
    running.start(lambda stop: worker.serve(stop))


def client(frontend: str, keys_dir: Path | None) -> BackendClient:
    return BackendClient(ClientSettings(address=frontend, keys_dir=keys_dir, connect_timeout_ms=300, ping_timeout_ms=300,
                                        timeout_ms=3000, retries=0))


def workers_seen(frontend: str, keys: Path, wait_s: float, expected: int | None = None) -> int:
    """How many workers the broker counts after ``wait_s`` (or as soon as it counts ``expected``)."""
    deadline = time.monotonic() + wait_s
    with client(frontend, keys) as admin:
        while True:
            count = len(admin.info()["workers"])
            if count == expected or time.monotonic() >= deadline:
                return count
            time.sleep(0.05)


def test_a_worker_with_a_worker_key_registers_and_serves(broker, keys, running):
    frontend, backend = broker
    start_worker(running, backend, keys)
    assert workers_seen(frontend, keys, wait_s=10, expected=1) == 1
    with client(frontend, keys) as user:
        assert user.classify(shade_png(11))["predictions"][0]["label"] == "shade-11"


def test_a_client_key_cannot_register_as_a_worker(broker, keys, running, tmp_path):
    frontend, backend = broker
    client_as_worker = folder_with(tmp_path, "rogue", {"server.key": keys / "server.key", "worker.key_secret": keys / "client.key_secret"})
    start_worker(running, backend, client_as_worker)
    assert workers_seen(frontend, keys, wait_s=REGISTRATION_WINDOW_S) == 0
    # and the broker still works for a real worker afterwards
    start_worker(running, backend, keys)
    assert workers_seen(frontend, keys, wait_s=10, expected=1) == 1


def test_a_worker_without_keys_or_with_an_unknown_key_cannot_register(broker, keys, running, tmp_path):
    frontend, backend = broker
    stranger = tmp_path / "stranger"
    keys_command.init_keys(stranger)
    unknown = folder_with(tmp_path, "unknown", {"server.key": keys / "server.key", "worker.key_secret": stranger / "worker.key_secret"})
    start_worker(running, backend, None)  # plain TCP to a CURVE port (loopback, so the settings allow it)
    start_worker(running, backend, unknown)
    assert workers_seen(frontend, keys, wait_s=REGISTRATION_WINDOW_S) == 0


def test_clients_need_a_client_key_at_the_frontend(broker, keys, running, tmp_path):
    frontend, backend = broker
    start_worker(running, backend, keys)
    assert workers_seen(frontend, keys, wait_s=10, expected=1) == 1
    worker_as_client = folder_with(tmp_path, "w", {"server.key": keys / "server.key", "client.key_secret": keys / "worker.key_secret"})
    for keys_dir in (None, worker_as_client):
        with client(frontend, keys_dir) as user:
            with pytest.raises(BackendUnavailable):
                user.classify(shade_png(2))
    with client(frontend, keys) as user:
        assert user.classify(shade_png(2))["predictions"][0]["label"] == "shade-2"
