"""The micro-batcher: no wait for a lone request, batches under load, bounded by max_batch."""

import threading
import time

from model_backend.batching import MicroBatcher


def test_lone_request_is_handed_out_at_once_even_with_a_long_max_wait():
    batcher = MicroBatcher(max_batch=8, max_wait_ms=5000)
    batcher.expect()
    batcher.put("a")
    started = time.monotonic()
    assert batcher.next_batch() == ["a"]
    assert time.monotonic() - started < 0.5


def test_ready_items_are_batched_up_to_max_batch():
    batcher = MicroBatcher(max_batch=3, max_wait_ms=0)
    for item in "abcde":
        batcher.expect()
        batcher.put(item)
    assert batcher.next_batch() == ["a", "b", "c"]
    assert batcher.next_batch() == ["d", "e"]


def test_waits_for_requests_still_decoding_but_not_past_max_wait():
    batcher = MicroBatcher(max_batch=4, max_wait_ms=2000)
    batcher.expect()
    batcher.expect()
    batcher.put("first")
    threading.Timer(0.1, batcher.put, args=("second",)).start()
    assert batcher.next_batch() == ["first", "second"]

    short = MicroBatcher(max_batch=4, max_wait_ms=50)
    short.expect()
    short.expect()  # this one never arrives
    short.put("x")
    started = time.monotonic()
    assert short.next_batch() == ["x"]
    assert time.monotonic() - started < 1.0


def test_cancelled_decode_stops_the_wait():
    batcher = MicroBatcher(max_batch=4, max_wait_ms=5000)
    batcher.expect()
    batcher.expect()
    batcher.put("ok")
    threading.Timer(0.05, batcher.cancel).start()
    started = time.monotonic()
    assert batcher.next_batch() == ["ok"]
    assert time.monotonic() - started < 2.0


def test_close_wakes_the_consumer():
    batcher = MicroBatcher(max_batch=4, max_wait_ms=0)
    threading.Timer(0.05, batcher.close).start()
    assert batcher.next_batch() == []
