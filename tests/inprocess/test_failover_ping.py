"""``ping`` and ``info`` fail over like ``classify``: a broker that is up without workers answers them itself with
``"ready": false``, and a client listing several brokers then asks the next one, which has a worker."""

from __future__ import annotations

import pytest

from model_backend.client import BackendClient
from model_backend.errors import BackendUnavailable
from model_backend.settings import ClientSettings
from tests.support.helpers import free_port
from tests.support.servers import RunningBroker
from tests.support.standin import shade_png


@pytest.fixture
def brokers():
    made: list[RunningBroker] = []

    def make() -> RunningBroker:
        made.append(RunningBroker())
        return made[-1]

    yield make
    for broker in made:
        broker.close()


def client_for(*addresses: str) -> BackendClient:
    return BackendClient(ClientSettings(address=",".join(addresses), connect_timeout_ms=300))


def test_ping_and_info_skip_a_broker_without_workers_for_one_that_has_one(brokers, serve):
    empty, staffed = brokers(), brokers()
    serve(connect=staffed.backend, heartbeat_ms=200)
    staffed.wait_for_workers(1)
    with client_for(empty.frontend) as alone:
        assert alone.ping()["ready"] is False  # what the first broker says by itself
    with client_for(empty.frontend, staffed.frontend) as client:
        ping = client.ping()
        assert ping["ready"] is True and ping["model"] == "stand-in" and ping["workers"] == 1
        info = client.info()
        assert info["ready"] is True and info["broker"] is True and len(info["workers"]) == 1
        assert client.classify(shade_png(4))["predictions"][0]["index"] == 4  # and classify starts where ping went


def test_with_no_broker_ready_ping_says_not_ready_instead_of_failing(brokers):
    first, second = brokers(), brokers()
    dead = f"tcp://127.0.0.1:{free_port()}"
    with client_for(dead, first.frontend, second.frontend) as client:
        ping = client.ping()
        assert ping["ok"] is True and ping["ready"] is False and ping["workers"] == 0
        assert client.info()["ready"] is False


def test_with_every_address_down_ping_is_unavailable_naming_each():
    dead = [f"tcp://127.0.0.1:{free_port()}" for _ in range(2)]
    with client_for(*dead) as client, pytest.raises(BackendUnavailable) as raised:
        client.ping()
    assert all(address in raised.value.message for address in dead)
