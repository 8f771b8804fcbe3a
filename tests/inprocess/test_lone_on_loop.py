"""adaptive: a lone request runs on the server's I/O loop itself, and still keeps every promise of the server.

When nothing else is in flight and nothing else waits to be read, the loop
decodes the request, runs the wide interpreter and sends the reply itself (no
inference thread woken, no trip back through the outbox). These tests check
that such a request is answered like any other: the right answer, a bad
image's error, a failing interpreter's error, a retry of the same id sent
meanwhile, a stop signal meanwhile, a worker behind a broker; and that a
forward pass too slow to hold the loop for goes to the inference threads.
"""

from __future__ import annotations

import json
import threading

import pytest
import zmq

from model_backend import protocol
from model_backend.errors import BadImage, InternalError
from model_backend.server import LONE_ON_LOOP_MAX_FORWARD_MS, LONE_ON_LOOP_MAX_IMAGE_BYTES, LONE_ON_LOOP_MAX_PIXELS
from tests.inprocess.test_execution import CORES, SharedCores
from tests.support.servers import RunningBroker
from tests.support.standin import progressive_jpeg_of_many_scans, shade_png

WAIT_S = 10


class HeldWide(SharedCores):
    """SharedCores whose wide interpreter, while ``hold`` is set, waits in its forward pass until ``release``."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hold = False
        self.entered = threading.Event()
        self.release = threading.Event()
        self.threads: list[str] = []

    def predict(self, batch):
        self.threads.append(threading.current_thread().name)
        if self.hold:
            self.entered.set()
            assert self.release.wait(WAIT_S), "the test never released the forward pass"
        return super().predict(batch)


def _dealer(address: str) -> zmq.Socket:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(address)
    return sock


def _send_classify(sock: zmq.Socket, request_id: str, image: bytes) -> None:
    sock.send_multipart([b"", *protocol.encode_request(request_id, protocol.OP_CLASSIFY, image=image)])


def _reply(sock: zmq.Socket) -> dict:
    assert sock.poll(WAIT_S * 1000), "no reply"
    return json.loads(sock.recv_multipart()[-1])


def _held_server(serve, **settings):
    """An adaptive server whose wide forward pass has run once (so the loop knows it is short), then held."""
    model = HeldWide()
    server = serve(model, execution="adaptive", intra_op_threads=CORES, **settings)
    with server.client() as client:
        assert client.classify(shade_png(1))["predictions"][0]["index"] == 1  # on a thread: not timed yet
    model.hold = True
    return server, model


def test_lone_requests_run_on_the_io_loop_with_right_answers_and_counts(serve):
    model = SharedCores()
    server = serve(model, execution="adaptive", intra_op_threads=CORES)
    with server.client() as client:
        for shade in (3, 9, 12, 5):
            reply = client.classify(shade_png(shade))
            assert reply["predictions"][0]["index"] == shade and reply["batch_size"] == 1
            assert set(reply["timings_ms"]) == set(protocol.STAGES)
        info = client.info()
    # the first one ran on a thread (the wide pass was not timed yet); the rest on the loop
    assert info["lone_on_loop"] == 3 and info["requests_served"] == 4
    assert model.ledger.runs == {"wide": 4, "narrow": 0}


def test_a_bad_image_and_a_failing_interpreter_on_the_loop_get_their_errors_and_the_loop_keeps_serving(serve):
    server = serve(SharedCores(), execution="adaptive", intra_op_threads=CORES)
    with server.client() as client:
        client.classify(shade_png(2))  # times the wide pass
        with pytest.raises(BadImage):
            client.classify(b"not an image")
        server.model.fail = True
        with pytest.raises(InternalError, match="stand-in failure"):
            client.classify(shade_png(4))
        server.model.fail = False
        assert client.classify(shade_png(6))["predictions"][0]["index"] == 6
        assert client.ping()["ready"] is True
        info = client.info()
    assert info["lone_on_loop"] == 3 and info["errors"] == 2 and info["requests_served"] == 2


def test_a_retry_sent_while_the_loop_runs_its_request_gets_the_answer_too(serve):
    server, model = _held_server(serve)
    first, retry = _dealer(server.address), _dealer(server.address)
    try:
        _send_classify(first, "same-id", shade_png(11))
        assert model.entered.wait(WAIT_S)  # the loop is in the forward pass of "same-id"
        _send_classify(retry, "same-id", shade_png(11))  # a client's retry on a new socket
        model.release.set()
        for sock in (first, retry):
            reply = _reply(sock)
            assert reply["ok"] is True and reply["id"] == "same-id"
            assert reply["predictions"][0]["index"] == 11
    finally:
        first.close()
        retry.close()
    assert not model.threads[1].startswith("inference-")  # "same-id" ran on the loop's thread


def test_requests_that_arrive_while_the_loop_runs_one_are_each_answered_after_it(serve):
    server, model = _held_server(serve)
    socks = [_dealer(server.address) for _ in range(4)]
    try:
        _send_classify(socks[0], "lone", shade_png(7))
        assert model.entered.wait(WAIT_S)
        for i, sock in enumerate(socks[1:], start=1):
            _send_classify(sock, f"waiting-{i}", shade_png(i))
        model.hold = False
        model.release.set()
        replies = [_reply(sock) for sock in socks]
    finally:
        for sock in socks:
            sock.close()
    assert [r["predictions"][0]["index"] for r in replies] == [7, 1, 2, 3]
    assert model.ledger.most <= CORES


def test_a_stop_signal_while_the_loop_runs_a_request_answers_it_and_ends(serve):
    server, model = _held_server(serve)
    sock = _dealer(server.address)
    try:
        _send_classify(sock, "last", shade_png(9))
        assert model.entered.wait(WAIT_S)
        server.stop.set()
        model.release.set()
        reply = _reply(sock)
        server.close()  # asserts the serving thread ended
    finally:
        sock.close()
    assert reply["ok"] is True and reply["predictions"][0]["index"] == 9


def test_a_forward_pass_too_slow_to_hold_the_loop_for_runs_on_an_inference_thread(serve):
    model = HeldWide(delay_s=(LONE_ON_LOOP_MAX_FORWARD_MS + 30) / 1000)
    server = serve(model, execution="adaptive", intra_op_threads=CORES)
    with server.client() as client:
        for shade in (4, 8):
            assert client.classify(shade_png(shade))["predictions"][0]["index"] == shade
        info = client.info()
    assert info["lone_on_loop"] == 0
    assert all(name.startswith("inference-") for name in model.threads)


def test_a_small_file_that_declares_a_large_image_is_decoded_on_an_inference_thread_not_on_the_loop(serve):
    # A flat PNG is a few KB whatever its size: its bytes say nothing of how long it takes to inflate.
    side = int(LONE_ON_LOOP_MAX_PIXELS ** 0.5) + 100
    large = shade_png(7, size=side)
    assert len(large) < LONE_ON_LOOP_MAX_IMAGE_BYTES
    model = HeldWide()
    server = serve(model, execution="adaptive", intra_op_threads=CORES)
    with server.client() as client:
        for shade in (2, 6):  # the first times the wide pass on a thread; the second runs on the loop
            assert client.classify(shade_png(shade))["predictions"][0]["index"] == shade
        assert client.info()["lone_on_loop"] == 1
        assert client.classify(large)["predictions"][0]["index"] == 7
        info = client.info()
    assert info["lone_on_loop"] == 1 and info["requests_served"] == 3
    assert model.threads[-1].startswith("inference-")


def test_a_progressive_jpeg_of_hundreds_of_scans_is_decoded_on_an_inference_thread_not_on_the_loop(serve):
    # 600 x 600 declares 0.36 MP, but its decoder goes over the image once per scan: 200 scans more count 14 passes
    many_scans = progressive_jpeg_of_many_scans(7, side=600, extra_scans=200)
    assert len(many_scans) < LONE_ON_LOOP_MAX_IMAGE_BYTES and 600 * 600 < LONE_ON_LOOP_MAX_PIXELS
    model = HeldWide()
    server = serve(model, execution="adaptive", intra_op_threads=CORES)
    with server.client() as client:
        for shade in (2, 6):  # the first times the wide pass on a thread; the second runs on the loop
            assert client.classify(shade_png(shade))["predictions"][0]["index"] == shade
        assert client.classify(progressive_jpeg_of_many_scans(4, side=600, extra_scans=0))["predictions"][0]["index"] == 4
        assert client.info()["lone_on_loop"] == 2  # a progressive JPEG of the usual scans still runs on the loop
        assert client.classify(many_scans)["predictions"][0]["index"] == 7
        info = client.info()
    assert info["lone_on_loop"] == 2 and info["requests_served"] == 4
    assert model.threads[-1].startswith("inference-")


def test_a_worker_behind_a_broker_runs_lone_requests_on_its_loop_and_stays_registered(serve):
    broker = RunningBroker(heartbeat_ms=100)
    try:
        worker = serve(SharedCores(), connect=broker.backend, heartbeat_ms=100, execution="adaptive", intra_op_threads=CORES)
        broker.wait_for_workers(1)
        with broker.client() as client:
            for shade in range(8):
                assert client.classify(shade_png(shade))["predictions"][0]["index"] == shade
        assert worker.server.info()["lone_on_loop"] >= 6
        assert len(broker.wait_for_workers(1)["workers"]) == 1  # its heartbeats went on
    finally:
        broker.close()
