"""Hostile traffic at the server and the broker, in-process and fast (real ZeroMQ sockets, stand-in model).

Each class of attack gets several members: hostile request frames (nesting,
numbers, types, encodings, frame counts, sizes); exceptions of any type while
handling one message; rogue workers (malformed READY, unframed control frames,
forged REPLYs); clients whose routing id looks like the old control frames;
retries of a request still in flight (answered once, decoded once).
"""

from __future__ import annotations

import json
import threading
import time

import pytest
import zmq

from model_backend import protocol
from model_backend.broker import Broker
from model_backend.client import BackendClient
from model_backend.errors import InternalError
from model_backend.settings import BrokerSettings, ClientSettings
from tests.support.servers import RunningBroker
from tests.support.standin import StandInClassifier, shade_png


def dealer(address: str, routing_id: bytes | None = None) -> zmq.Socket:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    if routing_id is not None:
        sock.setsockopt(zmq.ROUTING_ID, routing_id)
    sock.connect(address)
    return sock


def reply_to(sock: zmq.Socket, frames: list[bytes], timeout_ms: int = 3000) -> dict | None:
    sock.send_multipart(frames)
    if not sock.poll(timeout_ms):
        return None
    return json.loads(sock.recv_multipart()[-1])


def header(**fields) -> bytes:
    return json.dumps({"v": 1, "id": "h1", "op": "classify", **fields}).encode()


HOSTILE_REQUESTS = {
    "deep arrays": [b"", b"[" * 1000],
    "deeper arrays": [b"", b"[" * 4000],
    "deep objects": [b"", b'{"a":' * 1000 + b"1" + b"}" * 1000],
    "nested id": [b"", b'{"v": 1, "op": "ping", "id": ' + b"[" * 1500 + b"]" * 1500 + b"}"],
    "huge int": [b"", b'{"v": 1, "id": "h1", "op": "classify", "top_k": ' + b"9" * 5000 + b"}", b"img"],
    "huge float": [b"", header(top_k=1e300), b"img"],
    "1e999": [b"", b'{"v": 1, "id": "h1", "op": "classify", "top_k": 1e999}', b"img"],
    "NaN": [b"", b'{"v": NaN, "id": "h1", "op": "ping"}'],
    "Infinity": [b"", b'{"v": 1, "id": "h1", "op": "classify", "top_k": -Infinity}', b"img"],
    "negative": [b"", header(top_k=-5), b"img"],
    "float top_k": [b"", header(top_k=2.5), b"img"],
    "list op": [b"", json.dumps({"v": 1, "id": "h1", "op": ["ping"]}).encode()],
    "dict id": [b"", json.dumps({"v": 1, "id": {"x": 1}, "op": "ping"}).encode()],
    "string v": [b"", json.dumps({"v": "1", "id": "h1", "op": "ping"}).encode()],
    "null header": [b"", b"null"],
    "invalid utf-8": [b"", b"\xff\xfe\xfd"],
    "surrogate": [b"", b'{"v": 1, "id": "\xed\xa0\x80", "op": "ping"}'],
    "empty header": [b"", b""],
    "no body": [b""],
    "only empty frames": [b"", b"", b"", b""],
    "oversized header": [b"", b'{"v": 1, "id": "h1", "op": "ping", "pad": "' + b"x" * 10_000 + b'"}'],
    "too many image frames": [b"", header(), b"a", b"b", b"c"],
}


def test_hostile_requests_get_error_replies_and_the_server_keeps_answering(serve):
    server = serve()
    sock = dealer(server.address)
    try:
        for name, frames in HOSTILE_REQUESTS.items():
            reply = reply_to(sock, frames)
            assert reply is not None, f"no reply to {name}"
            assert reply["ok"] is False and reply["error"]["code"] == "bad_request", (name, reply)
            assert reply["error"]["message"].startswith("Expected"), (name, reply)
    finally:
        sock.close()
    assert server.thread.is_alive()
    with server.client() as client:
        assert client.classify(shade_png(6))["predictions"][0]["label"] == "shade-6"
        assert client.info()["internal_errors"] == 0


@pytest.mark.parametrize("count", [protocol.MAX_REQUEST_FRAMES + 1, 1000, 5000])
def test_messages_with_too_many_frames_are_dropped_unread(serve, count):
    server = serve()
    sock = dealer(server.address)
    try:
        sock.send_multipart([b"", header()] + [b"x" * 100] * count)
        assert not sock.poll(500), "a message with too many frames must be dropped, not answered"
        ping = reply_to(sock, [b""] + protocol.encode_request("after", "ping"))
        assert ping["ok"] is True and ping["id"] == "after"
    finally:
        sock.close()
    with server.client() as client:
        assert client.info()["dropped_messages"] == 1


@pytest.mark.parametrize("exception", [RecursionError("deep"), KeyError("k"), MemoryError(), ZeroDivisionError(), AttributeError("a")])
def test_any_exception_while_handling_one_message_is_answered_and_survived(serve, monkeypatch, exception):
    server = serve()

    def explode(*args, **kwargs):
        raise exception

    with server.client() as client:
        monkeypatch.setattr(server.server, "info", explode)
        with pytest.raises(InternalError, match="still serving"):
            client.info()
        monkeypatch.undo()
        assert client.classify(shade_png(2))["predictions"][0]["label"] == "shade-2"
        assert client.info()["internal_errors"] == 1
    assert server.thread.is_alive()


def test_a_retry_of_a_slow_request_is_decoded_and_predicted_once(serve):
    model = StandInClassifier(delay_s=1.6)
    server = serve(model)
    with server.client(timeout_ms=1000, retries=1) as client:
        # attempt 1 times out at 1 s; the retry (same id, new socket) gets the one answer at 1.6 s
        reply = client.classify(shade_png(9))
        info = client.info()
    assert reply["predictions"][0]["label"] == "shade-9"
    assert model.batch_sizes == [1], "the retried request must not be predicted twice"
    assert info["deduplicated"] == 1 and info["requests_served"] == 1


def test_the_same_id_with_different_content_is_not_merged(serve):
    server = serve(StandInClassifier(delay_s=0.3))
    first, second = dealer(server.address), dealer(server.address)
    try:
        first.send_multipart([b""] + protocol.encode_request("same", "classify", image=shade_png(1)))
        second.send_multipart([b""] + protocol.encode_request("same", "classify", image=shade_png(12)))
        replies = [json.loads(sock.recv_multipart()[-1]) for sock in (first, second) if sock.poll(5000)]
    finally:
        first.close()
        second.close()
    assert [r["predictions"][0]["label"] for r in replies] == ["shade-1", "shade-12"]


@pytest.mark.parametrize("routing_id", [b"\x01", b"\x02", b"\x00control", b"READY"])
def test_clients_with_control_like_routing_ids_are_served_normally_by_the_server(serve, routing_id):
    server = serve()
    sock = dealer(server.address, routing_id)
    try:
        reply = reply_to(sock, [b""] + protocol.encode_request("r", "classify", image=shade_png(3)))
    finally:
        sock.close()
    assert reply["ok"] is True and reply["predictions"][0]["label"] == "shade-3"


# -- the broker, with fake workers driven by the test -------------------------------------------


class FakeWorker:
    """A DEALER on the broker's worker port that the test drives frame by frame."""

    def __init__(self, backend: str, routing_id: bytes | None = None):
        self.sock = dealer(backend, routing_id)

    def send(self, command: bytes, *frames: bytes) -> None:
        self.sock.send_multipart(protocol.encode_worker_message(command, *frames))

    def register(self, capacity: int = 4) -> None:
        self.send(protocol.W_READY, json.dumps({"capacity": capacity, "model": "fake", "pid": 1}).encode())

    def next_request(self, timeout_s: float = 3.0) -> protocol.WorkerMessage | None:
        deadline = time.monotonic() + timeout_s
        while (remaining := deadline - time.monotonic()) > 0:
            if not self.sock.poll(int(remaining * 1000) + 1):
                return None
            message = protocol.parse_worker_message(self.sock.recv_multipart(), sender="broker")
            if message.command == protocol.W_REQUEST:
                return message
        return None

    def answer(self, message: protocol.WorkerMessage, **payload) -> None:
        token, header_frame = message.frames[0], message.frames[1]
        request_id = json.loads(header_frame)["id"]
        self.send(protocol.W_REPLY, token, protocol.encode_reply(request_id, payload))

    def close(self) -> None:
        self.sock.close()


class BrokerHarness(RunningBroker):
    """The real broker in a thread, with fake workers the test drives frame by frame."""

    def __init__(self):
        super().__init__(heartbeat_ms=1000)
        self.sockets: list = []

    def worker(self, routing_id: bytes | None = None) -> FakeWorker:
        worker = FakeWorker(self.backend, routing_id)
        self.sockets.append(worker)
        return worker

    def wait_for_workers(self, count: int, timeout_s: float = 5, poll_s: float = 0.02) -> dict:
        return super().wait_for_workers(count, timeout_s, poll_s)

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()
        super().close()


@pytest.fixture
def harness():
    running = BrokerHarness()
    yield running
    running.close()


def classify_in_thread(harness: BrokerHarness, outcome: list, request_id: str | None = None, **settings) -> threading.Thread:
    def run() -> None:
        with harness.client(**settings) as client:
            try:
                outcome.append(client.classify(shade_png(1)))
            except Exception as exc:  # noqa: BLE001 - the test looks at it
                outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_hostile_requests_at_the_broker_get_error_replies(harness):
    sock = dealer(harness.frontend)
    try:
        for name, frames in HOSTILE_REQUESTS.items():
            reply = reply_to(sock, frames)
            assert reply is not None and reply["ok"] is False and reply["error"]["code"] == "bad_request", name
        sock.send_multipart([b"", header()] + [b"x"] * 2000)
        assert not sock.poll(300)
    finally:
        sock.close()
    info = harness.info()
    assert harness.thread.is_alive() and info["internal_errors"] == 0 and info["rejected_messages"] >= 1


READY_PAYLOADS = [b"null", b"1e999", b"[]", b"[1, 2]", b'"ready"', b"[" * 3000, b"\xff\xfe", b"",
                  b'{"capacity": null}', b'{"capacity": 1e999}', b'{"capacity": [1]}', b'{"capacity": "8"}',
                  b'{"capacity": {"a": {"b": [1]}}}', b'{"capacity": -1}', b'{"capacity": 10000000}', b'{"capacity": 2.5}',
                  b'{"capacity": 2, "pid": [1]}', b'{"capacity": 2, "input_size": {"h": 1}}', b'{"capacity": NaN}']


def test_rogue_workers_with_malformed_ready_and_unframed_control_cannot_end_the_broker(harness):
    rogues = [harness.worker() for _ in range(3)]
    for payload in READY_PAYLOADS:
        rogues[0].send(protocol.W_READY, payload)
    rogues[1].sock.send_multipart([b"\x01", b'{"capacity": 4}'])  # the old unframed READY
    rogues[1].sock.send_multipart([b"\x02"])
    rogues[1].sock.send_multipart([b"", protocol.WORKER_PROTOCOL, b"SHUTDOWN"])
    rogues[2].send(protocol.W_REPLY, b"\x00" * 8, b"not json")  # a reply for nothing, from nobody registered
    rogues[2].sock.send_multipart([b"", protocol.WORKER_PROTOCOL, protocol.W_READY] + [b"{}"] * 50)
    time.sleep(0.3)
    info = harness.info()
    assert harness.thread.is_alive()
    assert info["workers"] == [] and info["internal_errors"] == 0
    assert info["rejected_messages"] >= len(READY_PAYLOADS) + 3
    good = harness.worker()
    good.register()
    outcome: list = []
    thread = classify_in_thread(harness, outcome)
    good.answer(good.next_request(), predictions=[{"index": 1, "label": "real", "p": 1.0}])
    thread.join(5)
    assert outcome[0]["predictions"][0]["label"] == "real"


def test_forged_replies_are_dropped_and_the_real_reply_reaches_the_client(harness):
    real = harness.worker()
    real.register(capacity=4)
    harness.wait_for_workers(1)
    outcome: list = []
    thread = classify_in_thread(harness, outcome, timeout_ms=5000, retries=0)
    request = real.next_request()
    assert request is not None
    token = request.frames[0]
    request_id = json.loads(request.frames[1])["id"]
    forged = protocol.encode_reply(request_id, {"predictions": [{"index": 0, "label": "forged", "p": 1.0}]})
    outsider = harness.worker()  # never registered
    outsider.send(protocol.W_REPLY, token, forged)
    insider = harness.worker()  # registered, but this request was not given to it
    insider.register(capacity=1)
    harness.wait_for_workers(2)
    insider.send(protocol.W_REPLY, token, forged)
    for guess in range(1, 20):  # guessing other tokens does not help either
        insider.send(protocol.W_REPLY, guess.to_bytes(8, "big"), forged)
    time.sleep(0.2)
    assert outcome == [], "a forged reply must not reach the client"
    real.answer(request, predictions=[{"index": 1, "label": "real", "p": 1.0}])
    thread.join(5)
    assert outcome[0]["predictions"][0]["label"] == "real"
    assert harness.info()["rejected_messages"] >= 2


def test_a_late_reply_from_a_worker_that_left_still_answers_its_request(harness):
    first, second = harness.worker(), harness.worker()
    first.register(capacity=1)
    harness.wait_for_workers(1)
    second.register(capacity=1)
    harness.wait_for_workers(2)
    outcome: list = []
    thread = classify_in_thread(harness, outcome, timeout_ms=5000, retries=0)
    request = first.next_request()
    first.send(protocol.W_DISCONNECT)  # leaves: the request is retried on the other worker
    retried = second.next_request()
    assert retried is not None and retried.frames[0] == request.frames[0]
    first.answer(request, predictions=[{"index": 1, "label": "late", "p": 1.0}])
    thread.join(5)
    assert outcome[0]["predictions"][0]["label"] == "late"
    second.answer(retried, predictions=[{"index": 2, "label": "second", "p": 1.0}])  # dropped: already answered
    assert harness.info()["requests_served"] == 1


@pytest.mark.parametrize("routing_id", [b"\x01", b"\x02", b"\x00\x01", protocol.W_READY])
def test_clients_with_control_like_routing_ids_are_served_normally_by_the_broker(harness, routing_id):
    worker = harness.worker()
    worker.register()
    harness.wait_for_workers(1)
    sock = dealer(harness.frontend, routing_id)
    try:
        sock.send_multipart([b""] + protocol.encode_request("c1", "classify", image=b"img"))
        worker.answer(worker.next_request(), predictions=[{"index": 1, "label": "ok", "p": 1.0}])
        assert sock.poll(3000)
        reply = json.loads(sock.recv_multipart()[-1])
        ping = reply_to(sock, [b""] + protocol.encode_request("p1", "ping"))
    finally:
        sock.close()
    assert reply["ok"] is True and reply["id"] == "c1" and reply["predictions"][0]["label"] == "ok"
    assert ping["ok"] is True and ping["ready"] is True
    assert harness.info()["workers"] == [{"pid": 1, "capacity": 4, "in_flight": 0}]


def test_the_broker_dispatches_a_retried_request_once(harness):
    worker = harness.worker()
    worker.register()
    harness.wait_for_workers(1)
    frames = [b""] + protocol.encode_request("retry-me", "classify", image=b"img")
    gave_up, retry = dealer(harness.frontend), dealer(harness.frontend)
    try:
        gave_up.send_multipart(frames)
        request = worker.next_request()
        retry.send_multipart(frames)  # the client's Lazy Pirate retry: same id, new socket
        assert worker.next_request(timeout_s=0.5) is None, "a retry of a request in flight must not be dispatched again"
        worker.answer(request, predictions=[])
        assert retry.poll(3000)
        assert json.loads(retry.recv_multipart()[-1])["id"] == "retry-me"
    finally:
        gave_up.close()
        retry.close()
    info = harness.info()
    assert info["deduplicated"] == 1 and info["requests_served"] == 1


# -- a worker, facing a broker driven by the test -----------------------------------------------


def test_a_worker_answers_framed_requests_and_drops_everything_else():
    from model_backend.server import BackendServer
    from model_backend.settings import ServerSettings

    router = zmq.Context.instance().socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    server = BackendServer(ServerSettings(connect=f"tcp://127.0.0.1:{port}", heartbeat_ms=100), StandInClassifier())
    server.open()
    stop = threading.Event()
    thread = threading.Thread(target=server.serve, args=(stop,), daemon=True)
    thread.start()

    def next_from_worker(command: bytes) -> tuple[bytes, protocol.WorkerMessage]:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if router.poll(100):
                identity, *frames = router.recv_multipart()
                message = protocol.parse_worker_message(frames, sender="worker")
                if message.command == command:
                    return identity, message
        raise AssertionError(f"the worker sent no {command!r}")

    try:
        identity, ready = next_from_worker(protocol.W_READY)
        assert protocol.parse_worker_ready(ready.frames[0]).model == "stand-in"
        hostile = [
            [b"\x01", b"{}"],  # unframed, as the old protocol
            [b"\x02"],
            [b"", b"MDPW01", protocol.W_REQUEST, b"t", b"{}"],
            [b"", protocol.WORKER_PROTOCOL, protocol.W_READY, b"{}"],  # a worker-only command
            [b"", protocol.WORKER_PROTOCOL, protocol.W_REQUEST, b"t0"] + [b"x"] * 40,
        ]
        for frames in hostile:
            router.send_multipart([identity, *frames])
        router.send_multipart([identity, *protocol.encode_worker_message(protocol.W_REQUEST, b"t1", b"[" * 2000)])
        _, bad = next_from_worker(protocol.W_REPLY)
        assert bad.frames[0] == b"t1" and json.loads(bad.frames[1])["error"]["code"] == "bad_request"
        request = protocol.encode_request("good", "classify", image=shade_png(8))
        router.send_multipart([identity, *protocol.encode_worker_message(protocol.W_REQUEST, b"t2", *request)])
        _, good = next_from_worker(protocol.W_REPLY)
        reply = protocol.decode_reply(good.frames[1])
        assert good.frames[0] == b"t2" and reply["id"] == "good" and reply["predictions"][0]["label"] == "shade-8"
        router.send_multipart([identity, *protocol.encode_worker_message(protocol.W_DISCONNECT)])
        next_from_worker(protocol.W_READY)  # "register again"
        info = server.info()
        assert info["dropped_messages"] == len(hostile) and info["internal_errors"] == 0
        stop.set()
        next_from_worker(protocol.W_DISCONNECT)  # goodbye on the way out
        thread.join(3)
        assert not thread.is_alive()
    finally:
        stop.set()
        router.close()


@pytest.mark.parametrize("frame_bytes", [70_000, 2_000_000])
def test_the_broker_cuts_off_a_client_that_sends_an_oversized_frame(frame_bytes):
    from zmq.utils.monitor import recv_monitor_message

    settings = BrokerSettings(frontend="tcp://127.0.0.1:*", backend="tcp://127.0.0.1:*", max_frame_bytes=64 * 1024)
    broker = Broker(settings)
    frontend, _ = broker.open()
    stop = threading.Event()
    thread = threading.Thread(target=broker.serve, args=(stop,), daemon=True)
    thread.start()
    sock = dealer(frontend)
    monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
    try:
        sock.send_multipart([b"", header(), b"\0" * frame_bytes])
        assert monitor.poll(5000) and recv_monitor_message(monitor)["event"] == zmq.EVENT_DISCONNECTED
        with BackendClient(ClientSettings(address=frontend)) as client:
            assert client.ping()["ok"] is True
        assert thread.is_alive()
    finally:
        sock.disable_monitor()
        monitor.close()
        sock.close()
        stop.set()
        thread.join(5)
