"""BackendClient never hangs: unavailable backends, silent backends, stale replies, closed clients."""

from __future__ import annotations

import json
import threading
import time

import pytest
import zmq

from model_backend import protocol
from model_backend.client import BackendClient
from model_backend.errors import BackendTimeout, BackendUnavailable, BadReply, BadRequest
from model_backend.settings import ClientSettings
from tests.support.helpers import free_port


def test_nothing_listening_is_unavailable_quickly():
    client = BackendClient(ClientSettings(address=f"tcp://127.0.0.1:{free_port()}", connect_timeout_ms=200))
    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match="No model backend is answering"):
        client.classify(b"img")
    assert time.monotonic() - started < 3
    client.close()


class SilentRouter:
    """A ROUTER that receives and never replies, counting what it got (a stuck backend)."""

    def __init__(self, answer_stale_first: bool = False, answer_with: bytes | None = None):
        self.context = zmq.Context.instance()
        self.sock = self.context.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        self.address = f"tcp://127.0.0.1:{port}"
        self.received = 0
        self.answer_stale_first = answer_stale_first
        self.answer_with = answer_with
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop.is_set():
            if self.sock.poll(50):
                frames = self.sock.recv_multipart()
                self.received += 1
                if self.answer_with is not None:
                    self.sock.send_multipart([frames[0], b"", self.answer_with])
                if self.answer_stale_first:
                    header = json.loads(frames[2])
                    stale = json.dumps({"v": 1, "id": "someone-else", "ok": True}).encode()
                    good = json.dumps({"v": 1, "id": header["id"], "ok": True, "ready": True}).encode()
                    self.sock.send_multipart([frames[0], b"", stale])
                    self.sock.send_multipart([frames[0], b"", good])

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()


def test_silent_backend_times_out_after_bounded_retries():
    router = SilentRouter()
    client = BackendClient(ClientSettings(address=router.address, timeout_ms=200, retries=2))
    started = time.monotonic()
    with pytest.raises(BackendTimeout, match="did not reply within 200 ms"):
        client.classify(b"img")
    elapsed = time.monotonic() - started
    assert 0.5 < elapsed < 3
    assert router.received == 3  # first try + 2 retries, each on a fresh socket
    client.close()
    router.close()


def test_stale_reply_is_dropped_and_the_right_one_returned():
    router = SilentRouter(answer_stale_first=True)
    with BackendClient(ClientSettings(address=router.address)) as client:
        assert client.ping()["ready"] is True
    router.close()


def test_closed_client_refuses_calls():
    client = BackendClient(ClientSettings(address="tcp://127.0.0.1:9"))
    client.close()
    with pytest.raises(BackendUnavailable, match="closed"):
        client.ping()


def test_classify_requires_bytes():
    with BackendClient() as client, pytest.raises(TypeError, match="bytes"):
        client.classify("chelsea.png")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "garbage",
    [b"\x00\x01", b"[" * 5000, b"null", b'{"v": 1, "ok": NaN}', b'{"v": 1, "id": 5, "ok": true}', b'{"ok": false, "error": "boom"}'],
)
def test_a_garbled_reply_is_a_bad_reply_and_its_socket_is_discarded(garbage):
    router = SilentRouter(answer_with=garbage)
    client = BackendClient(ClientSettings(address=router.address, timeout_ms=2000, retries=0))
    try:
        with pytest.raises(BadReply) as info:
            client.classify(b"img")
        assert not isinstance(info.value, BadRequest), "a garbled reply is the backend's fault, not the request's"
        assert info.value.code == "bad_reply" and info.value.http_status == 502
        assert client._idle == [], "the socket that got the garbled reply must not be reused"
    finally:
        client.close()
        router.close()


def test_an_oversized_reply_cuts_the_connection_and_ends_in_a_typed_error_at_once():
    router = SilentRouter(answer_with=b'{"ok": true, "pad": "' + b"x" * (protocol.MAX_REPLY_BYTES + 1024) + b'"}')
    client = BackendClient(ClientSettings(address=router.address, timeout_ms=5000, retries=0))
    try:
        started = time.monotonic()
        with pytest.raises(BackendUnavailable, match="connection"):
            client.info()
        assert time.monotonic() - started < 2.5, "a cut connection is an answer now, not a wait for the timeout"
    finally:
        client.close()
        router.close()


def test_many_threads_opening_and_dropping_sockets_only_ever_get_typed_errors():
    """Sockets made and thrown away from many threads at once (a backend that is down) never leak a raw ZMQError.

    Each pooled socket has a connection monitor; pyzmq's default monitor address is named after the socket's
    file descriptor, which a socket just closed by another thread may still hold ("Address already in use").
    """
    client = BackendClient(ClientSettings(address=f"tcp://127.0.0.1:{free_port()}", connect_timeout_ms=1, ping_timeout_ms=1))
    outcomes: list[str] = []

    def ping_a_lot() -> None:
        for _ in range(150):
            try:
                client.ping()
                outcomes.append("ok")
            except BackendUnavailable:
                outcomes.append("unavailable")
            except Exception as exc:  # noqa: BLE001 - what this test is looking for
                outcomes.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=ping_a_lot) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client.close()
    assert set(outcomes) == {"unavailable"}, {o for o in outcomes if o != "unavailable"}
