"""The bench's lean load generator against real sockets: a ZeroMQ ROUTER and an HTTP/1.1 server in threads.

It must keep exactly N requests in flight, time every one, match each reply to
its own request, count error answers and broken connections as errors (and go
on), and send what a client sends (the protocol's request frames; a multipart
body with the image intact).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import zmq

from model_backend import protocol
from model_backend.errors import Overloaded
from tools.bench.lean_load import http_channels, zmq_channels
from tools.bench.load import run_load, summarize
from tools.bench.plan import BenchError

IMAGE = bytes(range(256)) * 40  # 10 KB, every byte value: a body mangled anywhere shows


class RouterStub:
    """A ROUTER answering classify requests in the order received, holding ``hold`` of them before answering
    (so the generator's in-flight count shows), every ``fail_every``-th with an ``overloaded`` error."""

    def __init__(self, hold: int, fail_every: int = 0):
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.ROUTER)
        self.address = f"tcp://127.0.0.1:{self.socket.bind_to_random_port('tcp://127.0.0.1')}"
        self.hold, self.fail_every = hold, fail_every
        self.received: list[protocol.Request] = []
        self.most_waiting = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        waiting = []
        poller = zmq.Poller()
        poller.register(self.socket, zmq.POLLIN)
        while not self._stop.is_set():
            if not poller.poll(20):
                if waiting:  # the last few of a run: nothing more will come, answer them
                    self._answer(waiting.pop(0))
                continue
            envelope, body = protocol.split_envelope(self.socket.recv_multipart())
            waiting.append((envelope, protocol.parse_request(body)))
            self.most_waiting = max(self.most_waiting, len(waiting))
            if len(waiting) >= self.hold:
                self._answer(waiting.pop(0))

    def _answer(self, job) -> None:
        envelope, request = job
        self.received.append(request)
        if self.fail_every and len(self.received) % self.fail_every == 0:
            frame = protocol.encode_error(request.id, Overloaded("queue full"))
        else:
            frame = protocol.encode_reply(request.id, {"predictions": [{"label": "x", "p": 1.0, "index": 0}],
                                                       "batch_size": 1, "echo": len(request.image or b"")})
        self.socket.send_multipart(envelope + [frame])

    def close(self) -> None:
        self._stop.set()
        self.thread.join(5)
        self.socket.close(linger=0)
        self.context.term()


@pytest.fixture
def router():
    stubs = []

    def make(hold: int, fail_every: int = 0) -> RouterStub:
        stubs.append(RouterStub(hold, fail_every))
        return stubs[-1]

    yield make
    for stub in stubs:
        stub.close()


def test_zmq_keeps_n_in_flight_and_matches_every_reply(router):
    stub = router(hold=4)
    result = run_load(zmq_channels(stub.address, IMAGE), concurrency=4, requests=40)
    assert result.errors == [] and len(result.latencies_ms) == 40 and result.wall_s > 0
    assert stub.most_waiting == 4  # never more than asked for in flight, and the generator did fill all four
    assert all(request.op == protocol.OP_CLASSIFY and request.image == IMAGE for request in stub.received)
    assert len({request.id for request in stub.received}) == 40
    assert all(reply["echo"] == len(IMAGE) for reply in result.replies)
    assert summarize(result)["requests"] == 40


def test_zmq_error_answers_are_counted_and_the_run_goes_on(router):
    stub = router(hold=1, fail_every=5)
    result = run_load(zmq_channels(stub.address, IMAGE), concurrency=3, requests=20)
    assert len(result.latencies_ms) == 16
    assert result.errors == ["Overloaded: queue full"] * 4


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    seen: list = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        boundary = self.headers["Content-Type"].split("boundary=", 1)[1]
        number = len(self.seen) + 1
        self.seen.append((boundary, body))
        if number == 3:  # a broken connection in the middle of a run
            self.close_connection = True
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"trunc")
            return
        status, answer = (503, {"error": "busy"}) if number % 4 == 0 else (200, {"ok": True, "n": number})
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    _Handler.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/v1/classify"
    server.shutdown()
    server.server_close()


def test_http_sends_the_image_intact_and_counts_errors_and_broken_connections(http_server):
    result = run_load(http_channels(http_server, IMAGE, "photo.jpg", "image/jpeg"), concurrency=2, requests=12)
    seen = _Handler.seen
    assert len(seen) == 12
    for boundary, body in seen:
        assert body.startswith(f"--{boundary}\r\n".encode()) and body.endswith(f"\r\n--{boundary}--\r\n".encode())
        assert b'name="image"; filename="photo.jpg"' in body and b"\r\n\r\n" + IMAGE + b"\r\n--" in body
    assert len({boundary for boundary, _ in seen}) == 12  # a fresh boundary per request
    assert len(result.errors) == 1 + 3  # the broken connection, and numbers 4, 8, 12 answered 503
    assert sum("closed the connection" in error for error in result.errors) == 1
    assert sum(error.startswith("BenchError: HTTP 503") for error in result.errors) == 3
    assert len(result.latencies_ms) == 8 and all(reply["ok"] for reply in result.replies)


def test_http_nothing_listening_is_a_clear_error():
    with pytest.raises(BenchError, match="could not start"):
        run_load(http_channels("http://127.0.0.1:9/api/v1/classify", IMAGE), concurrency=2, requests=4)
