"""The real server on each execution strategy, with stand-in interpreters: right answers, shared cores, failures, shutdown.

A ``SharedCores`` stand-in says it runs on LiteRT and makes replicas; every
interpreter (the wide one and its replicas) records into one ledger how many
threads of which kind run at once, so a test can check that the server never
runs more interpreter threads than cores (``--intra-op-threads 2``: two).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from model_backend.errors import BackendUnavailable, BadImage, InternalError
from tests.support.standin import StandInClassifier, shade_png

CORES = 2


class Ledger:
    """Threads busy in a forward pass right now (wide ones count as all cores), and the most ever seen."""

    def __init__(self):
        self.lock = threading.Lock()
        self.busy = 0
        self.most = 0
        self.runs = {"wide": 0, "narrow": 0}

    def enter(self, kind: str, cores: int) -> None:
        with self.lock:
            self.busy += cores
            self.most = max(self.most, self.busy)
            self.runs[kind] += 1

    def leave(self, cores: int) -> None:
        with self.lock:
            self.busy -= cores


class SharedCores(StandInClassifier):
    """A stand-in LiteRT model: ``replica(1)`` gives a narrow copy; all copies write to one ledger."""

    runtime = "litert"
    runtime_reason = "stand-in"
    model_bytes = 1000

    def __init__(self, ledger: Ledger | None = None, num_threads: int = CORES, delay_s: float = 0.002, fail_narrow: bool = False):
        super().__init__(delay_s=delay_s)
        self.ledger = ledger or Ledger()
        self.num_threads = num_threads
        self.fail_narrow = fail_narrow

    def replica(self, num_threads: int) -> "SharedCores":
        return SharedCores(self.ledger, num_threads, self.delay_s, self.fail_narrow)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        kind = "wide" if self.num_threads > 1 else "narrow"
        self.ledger.enter(kind, self.num_threads)
        try:
            if self.fail_narrow and kind == "narrow":
                raise RuntimeError("stand-in interpreter failure")
            return super().predict(batch)
        finally:
            self.ledger.leave(self.num_threads)


def _classify_many(server, count: int, threads: int) -> list[tuple[int, dict]]:
    with server.client() as client:
        def classify(i: int) -> tuple[int, dict]:
            return i % 16, client.classify(shade_png(i % 16))

        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(classify, range(count)))


@pytest.mark.parametrize("strategy", ["pool", "adaptive"])
def test_every_request_gets_its_own_answer_and_cores_are_never_oversubscribed(serve, strategy):
    model = SharedCores()
    server = serve(model, execution=strategy, intra_op_threads=CORES, pool_batch=1)
    results = _classify_many(server, 160, threads=8)
    assert [expected for expected, _ in results] == [reply["predictions"][0]["index"] for _, reply in results]
    assert all(reply["batch_size"] == 1 for _, reply in results)
    assert model.ledger.most <= CORES
    assert model.ledger.runs["narrow"] > 0
    with server.client() as client:
        info = client.info()
    assert info["execution"] == strategy and info["inference_threads"] == CORES
    assert info["execution_reason"].startswith(f"asked for (--execution {strategy})")
    assert info["requests_served"] == 160 and info["batches"] == 160


def test_adaptive_runs_a_lone_request_on_the_wide_interpreter(serve):
    model = SharedCores()
    server = serve(model, execution="adaptive", intra_op_threads=CORES)
    with server.client() as client:
        for shade in (3, 9, 12):
            assert client.classify(shade_png(shade))["predictions"][0]["index"] == shade
    assert model.ledger.runs == {"wide": 3, "narrow": 0}


def test_wide_keeps_batching_on_one_thread(serve):
    model = SharedCores(delay_s=0.005)
    server = serve(model, execution="wide", intra_op_threads=CORES, max_batch=8)
    results = _classify_many(server, 80, threads=8)
    assert all(expected == reply["predictions"][0]["index"] for expected, reply in results)
    assert max(model.batch_sizes) > 1 and model.ledger.runs["narrow"] == 0
    with server.client() as client:
        assert client.info()["inference_threads"] == 1


def test_a_failing_interpreter_answers_internal_and_its_thread_keeps_serving(serve):
    model = SharedCores(fail_narrow=True)
    server = serve(model, execution="pool", intra_op_threads=CORES)
    with server.client() as client:
        for _ in range(2 * CORES + 1):  # more failures than inference threads: none of them died
            with pytest.raises(InternalError, match="stand-in interpreter failure"):
                client.classify(shade_png(4))
        info = client.info()
    assert info["errors"] == 2 * CORES + 1 and info["requests_served"] == 0


def test_the_model_without_replicas_batches_even_when_pool_is_asked(serve):
    model = StandInClassifier(delay_s=0.005)
    server = serve(model, execution="pool", max_batch=8)
    results = _classify_many(server, 80, threads=8)
    assert all(expected == reply["predictions"][0]["index"] for expected, reply in results)
    with server.client() as client:
        info = client.info()
    assert info["execution"] == "batched" and "micro-batching" in info["execution_reason"]


@pytest.mark.parametrize("strategy", ["pool", "adaptive"])
def test_stopping_with_slow_forward_passes_in_flight_answers_unavailable_and_ends(serve, strategy):
    model = SharedCores(delay_s=3.0)  # longer than the shutdown grace
    server = serve(model, execution=strategy, intra_op_threads=CORES)
    client = server.client(timeout_ms=20_000, retries=0)
    pool = ThreadPoolExecutor(4)
    futures = [pool.submit(client.classify, shade_png(i)) for i in range(4)]
    while model.ledger.busy == 0:
        threading.Event().wait(0.01)
    server.close()  # asserts the serving thread ended, though forward passes still run
    for future in futures:
        with pytest.raises(BackendUnavailable):
            future.result(timeout=15)
    client.close()
    pool.shutdown()


@pytest.mark.parametrize("strategy", ["pool", "adaptive"])
def test_pool_and_adaptive_decode_on_the_inference_threads_and_bad_images_spare_them(serve, strategy):
    before = set(threading.enumerate())
    server = serve(SharedCores(), execution=strategy, intra_op_threads=CORES)
    started = [t.name for t in set(threading.enumerate()) - before]
    with server.client() as client:
        for _ in range(2 * CORES + 1):  # more bad images than inference threads: each is answered, none kills one
            with pytest.raises(BadImage):
                client.classify(b"not an image")
        assert client.classify(shade_png(7))["predictions"][0]["index"] == 7
        info = client.info()
    assert info["decode_inline"] is True and info["errors"] == 2 * CORES + 1 and info["requests_served"] == 1
    assert not [name for name in started if name.startswith("decode-")]  # no decode pool was started


def test_wide_still_hands_decoding_to_the_decode_pool(serve):
    before = set(threading.enumerate())
    server = serve(SharedCores(), execution="wide", intra_op_threads=CORES)
    assert [t for t in set(threading.enumerate()) - before if t.name.startswith("decode-")]
    with server.client() as client:
        assert client.classify(shade_png(5))["predictions"][0]["index"] == 5
        assert client.info()["decode_inline"] is False


def test_a_pool_thread_takes_waiting_requests_as_one_batch_and_answers_good_and_bad_images_each_their_own(serve):
    model = SharedCores(delay_s=0.005)
    server = serve(model, execution="pool", intra_op_threads=CORES, pool_batch=2)
    bad = {i for i in range(96) if i % 5 == 0}
    with server.client() as client:
        def classify(i: int):
            try:
                return client.classify(b"not an image" if i in bad else shade_png(i % 16))
            except BadImage as exc:
                return exc

        with ThreadPoolExecutor(12) as pool:
            replies = list(pool.map(classify, range(96)))
        info = client.info()
    for i, reply in enumerate(replies):
        if i in bad:
            assert isinstance(reply, BadImage), (i, reply)
        else:
            assert reply["predictions"][0]["index"] == i % 16, (i, reply)
    sizes = [reply["batch_size"] for reply in replies if isinstance(reply, dict)]
    assert max(sizes) == 2 and set(sizes) <= {1, 2}  # a busy pool pairs requests, never more than pool_batch
    assert model.ledger.most <= CORES
    assert info["pool_batch"] == 2 and info["errors"] == len(bad) and info["requests_served"] == 96 - len(bad)


def test_wide_reports_no_pool_batch(serve):
    server = serve(SharedCores(), execution="wide", intra_op_threads=CORES, pool_batch=2)
    with server.client() as client:
        info = client.info()
    assert info["pool_batch"] is None
