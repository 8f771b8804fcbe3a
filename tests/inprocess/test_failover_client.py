"""A client given several addresses fails over within one call: dead, cut, stopping or worker-less first addresses."""

from __future__ import annotations

import threading

import pytest
import zmq

from model_backend import protocol
from model_backend.client import BackendClient
from model_backend.errors import BackendUnavailable, NotReady
from model_backend.settings import ClientSettings
from tests.support.helpers import free_port
from tests.support.servers import RunningBroker
from tests.support.standin import shade_png


class OneShotRouter:
    """A ROUTER that takes requests and either answers each with an error reply or closes on the first one (a backend dying)."""

    def __init__(self, address: str = "tcp://127.0.0.1:*", error: Exception | None = None):
        self.sock = zmq.Context.instance().socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(address)
        self.address = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.error = error
        self.received = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self.stop.is_set():
                if not self.sock.poll(50):
                    continue
                frames = self.sock.recv_multipart()
                self.received += 1
                envelope, body = protocol.split_envelope(frames)
                if self.error is None:
                    return  # closes the socket with the request unanswered: the client sees the connection drop
                self.sock.send_multipart(envelope + [protocol.encode_error(protocol.request_id_of(body), self.error)])
        finally:
            self.sock.close(linger=0)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)


@pytest.fixture
def routers():
    made: list[OneShotRouter] = []

    def make(**kwargs) -> OneShotRouter:
        made.append(OneShotRouter(**kwargs))
        return made[-1]

    yield make
    for router in made:
        router.close()


def client_for(*addresses: str, **settings) -> BackendClient:
    return BackendClient(ClientSettings(address=",".join(addresses), connect_timeout_ms=300, **settings))


def test_a_dead_first_address_fails_over_and_later_calls_start_at_the_one_that_answered(standin_server, routers):
    dead = f"tcp://127.0.0.1:{free_port()}"
    alive = standin_server()
    with client_for(dead, alive) as client:
        assert client.classify(shade_png(3))["predictions"][0]["index"] == 3
        late_comer = routers(address=dead, error=BackendUnavailable("must not be asked"))  # the first address comes back
        for shade in range(5):
            assert client.classify(shade_png(shade))["predictions"][0]["index"] == shade
    assert late_comer.received == 0, "calls keep going to the address that answered last"


def test_a_connection_cut_mid_request_is_resent_to_the_next_address(standin_server, routers):
    dying = routers()  # takes the request, then goes away without answering
    alive = standin_server()
    with client_for(dying.address, alive, timeout_ms=30_000, retries=0) as client:
        assert client.classify(shade_png(7))["predictions"][0]["index"] == 7
    assert dying.received == 1


@pytest.mark.parametrize("error", [BackendUnavailable("The backend is shutting down; please retry."), NotReady("No model worker is connected")])
def test_an_unavailable_or_not_ready_answer_fails_over_but_is_kept_with_one_address(standin_server, routers, error):
    refusing = routers(error=error)
    alive = standin_server()
    with client_for(refusing.address, alive) as client:
        assert client.classify(shade_png(2))["predictions"][0]["index"] == 2
    with client_for(refusing.address) as client, pytest.raises(type(error), match=error.message):
        client.classify(shade_png(2))


def test_a_broker_without_workers_listed_first_hands_over_to_a_backend_that_has_a_model(standin_server):
    broker = RunningBroker()
    try:
        with client_for(broker.frontend, standin_server()) as client:
            assert client.classify(shade_png(9))["predictions"][0]["index"] == 9
        with client_for(broker.frontend) as client, pytest.raises(NotReady):
            client.classify(shade_png(9))
    finally:
        broker.close()


def test_all_addresses_dead_is_unavailable_naming_each_of_them():
    dead = [f"tcp://127.0.0.1:{free_port()}" for _ in range(2)]
    with client_for(*dead) as client, pytest.raises(BackendUnavailable) as info:
        client.classify(shade_png(1))
    message = info.value.message
    assert "any of 2 addresses" in message
    for address in dead:
        assert f"{address}: no connection within 300 ms" in message


def test_all_addresses_refusing_keeps_their_own_error(routers):
    first, second = routers(error=NotReady("no worker here")), routers(error=NotReady("no worker there"))
    with client_for(first.address, second.address) as client, pytest.raises(NotReady, match="no worker there"):
        client.classify(shade_png(1))
    assert (first.received, second.received) == (1, 1), "each address is asked once"
