"""The server's behaviour with a fast stand-in model (no TensorFlow): batching, overload, failures, bad input.

The server runs in a thread of the test process, bound to a free port (the ``serve``
fixture, tests/support/servers.py); every request goes through a real ZeroMQ socket.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import zmq

from model_backend.errors import BadImage, BadRequest, InternalError, Overloaded, TooLarge
from tests.support.standin import StandInClassifier, shade_png


def test_classify_reply_has_predictions_timings_and_batch_size(serve):
    server = serve()
    with server.client() as client:
        reply = client.classify(shade_png(7), top_k=3)
    assert [p["label"] for p in reply["predictions"]][0] == "shade-7"
    assert len(reply["predictions"]) == 3
    assert set(reply["timings_ms"]) == {"queue", "decode", "preprocess", "inference", "total"}
    assert reply["batch_size"] == 1 and reply["model"] == "stand-in"
    assert reply["roundtrip_ms"] >= reply["timings_ms"]["total"] > 0


def test_concurrent_requests_from_one_client_each_get_their_own_answer(serve):
    server = serve(StandInClassifier(delay_s=0.005), max_batch=8)
    with server.client() as client:
        def classify(i: int) -> tuple[int, int]:
            return i % 16, client.classify(shade_png(i % 16))["predictions"][0]["index"]

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(classify, range(8 * 25)))
    assert len(results) == 200
    assert all(expected == got for expected, got in results)
    assert max(server.model.batch_sizes) > 1, "concurrent requests should share forward passes"
    assert max(server.model.batch_sizes) <= 8


def test_queue_limit_answers_overloaded_at_once(serve):
    server = serve(StandInClassifier(delay_s=0.3), max_batch=1, queue_size=2)
    errors, replies = [], []

    def classify(i: int) -> None:
        with server.client(timeout_ms=10_000) as client:
            try:
                replies.append(client.classify(shade_png(i)))
            except Overloaded as exc:
                errors.append(exc)

    threads = [threading.Thread(target=classify, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors, "requests beyond queue_size must be refused"
    assert "busy" in errors[0].message
    assert len(replies) + len(errors) == 6 and len(replies) >= 2


def test_a_failing_model_answers_every_request_with_an_error_and_keeps_serving(serve):
    server = serve(StandInClassifier(fail=True))
    with server.client() as client:
        with pytest.raises(InternalError, match="stand-in failure"):
            client.classify(shade_png(1))
        server.model.fail = False
        assert client.classify(shade_png(2))["predictions"][0]["label"] == "shade-2"


def test_bad_images_get_typed_errors(serve):
    server = serve(max_image_bytes=10_000)
    with server.client() as client:
        with pytest.raises(BadImage):
            client.classify(b"not an image")
        with pytest.raises(BadImage, match="empty"):
            client.classify(b"")
        with pytest.raises(TooLarge):
            client.classify(b"\xff" * 20_000)
        with pytest.raises(BadRequest, match="top_k"):
            client.classify(shade_png(1), top_k=0)
        assert client.ping()["ready"] is True


def test_raw_socket_garbage_gets_error_replies_and_the_server_survives(serve):
    server = serve()
    context = zmq.Context.instance()
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(server.address)
    try:
        cases = [
            [b"", b"\x00\x01garbage"],
            [b"", json.dumps({"v": 1, "id": "u1", "op": "reboot"}).encode()],
            [b"", b"{" + b" " * 10_000 + b"}"],
            [b"", json.dumps({"v": 1, "id": "c1", "op": "classify"}).encode(), b"x", b"y"],
            [b"just-one-frame-no-delimiter"],
        ]
        for frames in cases:
            sock.send_multipart(frames)
            assert sock.poll(5000), f"no reply to {frames!r}"
            reply = json.loads(sock.recv_multipart()[-1])
            assert reply["ok"] is False and reply["error"]["code"] == "bad_request"
            assert reply["error"]["message"]
        unknown_op = json.dumps({"v": 1, "id": "u1", "op": "reboot"}).encode()
        sock.send_multipart([b"", unknown_op])
        sock.poll(5000)
        assert json.loads(sock.recv_multipart()[-1])["id"] == "u1"
    finally:
        sock.close()
    with server.client() as client:
        assert client.classify(shade_png(4))["predictions"][0]["label"] == "shade-4"


def test_info_reports_model_batching_and_counts(serve):
    server = serve(max_batch=4, max_wait_ms=1.5, queue_size=9)
    with server.client() as client:
        client.classify(shade_png(3))
        info = client.info()
    assert info["model"] == "stand-in" and info["input_size"] == [32, 32] and info["num_classes"] == 16
    assert (info["max_batch"], info["max_wait_ms"], info["queue_size"]) == (4, 1.5, 9)
    assert info["requests_served"] == 1 and info["uptime_s"] >= 0 and info["ready"] is True
