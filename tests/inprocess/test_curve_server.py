"""CURVE at a standalone backend: the real BackendServer (stand-in model, in-process) and BackendClient.

The right client key gets answers; no key, an unknown key, a worker key or a wrong
server key gets BackendUnavailable quickly, and the server never sees the request.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from model_backend import keys_command, security
from model_backend.client import BackendClient
from model_backend.errors import BackendUnavailable
from model_backend.settings import ClientSettings
from tests.support.helpers import folder_with
from tests.support.servers import RunningServer
from tests.support.standin import StandInClassifier, shade_png

REFUSED_WITHIN_MS = 300


@pytest.fixture(scope="module")
def server(keys):
    running = RunningServer(StandInClassifier(), keys_dir=keys, max_batch=4)
    yield running.server, running.address
    running.close()


def client(address: str, keys_dir: Path | None) -> BackendClient:
    return BackendClient(ClientSettings(address=address, keys_dir=keys_dir, connect_timeout_ms=REFUSED_WITHIN_MS,
                                        ping_timeout_ms=REFUSED_WITHIN_MS, timeout_ms=2000, retries=0))


def test_the_right_client_key_gets_a_round_trip(server, keys):
    _, address = server
    with client(address, keys) as backend:
        reply = backend.classify(shade_png(9))
        assert reply["predictions"][0]["label"] == "shade-9"
        assert backend.ping()["ready"] is True


def test_a_key_added_with_keys_add_works_from_its_own_folder(server, keys, tmp_path):
    _, address = server
    laptop = keys_command.add_key(keys, f"laptop-{tmp_path.name}", security.CLIENT, out=tmp_path / "laptop")
    with client(address, laptop) as backend:
        assert backend.classify(shade_png(3))["predictions"][0]["label"] == "shade-3"


def refused(address: str, keys_dir: Path | None) -> None:
    with client(address, keys_dir) as backend:
        with pytest.raises(BackendUnavailable):
            backend.ping()
        with pytest.raises(BackendUnavailable):
            backend.classify(shade_png(1))


def test_a_client_without_keys_is_refused(server):
    backend, address = server
    served = backend.info()["requests_served"]
    refused(address, None)
    assert backend.info()["requests_served"] == served


def test_a_client_with_an_unknown_key_is_refused(server, keys, tmp_path):
    backend, address = server
    stranger = tmp_path / "stranger"
    keys_command.init_keys(stranger)
    unknown = folder_with(tmp_path, "unknown", {"server.key": keys / "server.key", "client.key_secret": stranger / "client.key_secret"})
    served = backend.info()["requests_served"]
    refused(address, unknown)
    assert backend.info()["requests_served"] == served


def test_a_client_using_a_worker_key_is_refused(server, keys, tmp_path):
    _, address = server
    worker_as_client = folder_with(tmp_path, "w", {"server.key": keys / "server.key", "client.key_secret": keys / "worker.key_secret"})
    refused(address, worker_as_client)


def test_a_client_that_trusts_another_server_key_is_refused(server, tmp_path):
    _, address = server
    other = tmp_path / "other"
    keys_command.init_keys(other)  # its own server.key: talking to our server must fail (no man in the middle either way)
    refused(address, other)
