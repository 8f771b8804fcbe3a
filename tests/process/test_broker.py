"""Scale-out: a broker with several worker processes; a worker killed mid-load; a worker joining later."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from model_backend.errors import BackendError, NotReady
from tests.support.helpers import ROOT, run_threads, wait_for
from tests.support.servers import RunningBroker
from tests.support.standin import shade_png


class BrokerWithWorkers(RunningBroker):
    """The real broker in a thread of the test process, with stand-in worker processes (tests.support.standin_worker)."""

    def __init__(self):
        super().__init__(heartbeat_ms=200)
        self.workers: list[subprocess.Popen] = []

    def add_worker(self, delay: float = 0.02) -> subprocess.Popen:
        worker = subprocess.Popen(
            [sys.executable, "-m", "tests.support.standin_worker", "--connect", self.backend, "--delay", str(delay)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.workers.append(worker)
        return worker

    def close(self) -> None:
        for worker in self.workers:
            worker.kill()
            worker.wait()
        super().close()


@pytest.fixture
def broker():
    running = BrokerWithWorkers()
    yield running
    running.close()


def test_without_workers_ping_says_not_ready_and_classify_is_refused(broker):
    with broker.client() as client:
        assert client.ping()["ready"] is False
        with pytest.raises(NotReady, match="No model worker"):
            client.classify(shade_png(1))


def test_requests_are_spread_over_several_workers(broker):
    broker.add_worker()
    broker.add_worker()
    broker.wait_for_workers(2)
    with broker.client() as client:
        def classify(i: int) -> bool:
            return client.classify(shade_png(i % 16))["predictions"][0]["index"] == i % 16

        with ThreadPoolExecutor(8) as pool:
            assert all(pool.map(classify, range(200)))
        info = client.info()
    assert info["requests_served"] >= 200
    assert info["ready"] is True and info["model"] == "stand-in"


def test_a_worker_killed_mid_load_loses_no_request_and_a_new_worker_joins(broker):
    first = broker.add_worker(delay=0.03)
    broker.add_worker(delay=0.03)
    broker.wait_for_workers(2)
    outcomes: list[str] = []
    lock = threading.Lock()

    def load(offset: int) -> None:
        with broker.client(timeout_ms=10_000, retries=0) as client:
            for i in range(25):
                try:
                    ok = client.classify(shade_png((i + offset) % 16))["predictions"][0]["index"] == (i + offset) % 16
                    result = "ok" if ok else "wrong"
                except BackendError as exc:
                    result = exc.code
                with lock:
                    outcomes.append(result)

    threads = [threading.Thread(target=load, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    wait_for(lambda: len(outcomes) >= 40, timeout_s=60, what="40 answers before the kill")
    first.kill()  # SIGKILL: no goodbye, requests in flight on it
    for thread in threads:
        thread.join(60)
    assert len(outcomes) == 200, "every request must be answered"
    assert "wrong" not in outcomes
    assert outcomes.count("ok") >= 195, outcomes  # in-flight ones are retried on the other worker
    info = broker.wait_for_workers(1)
    assert info["workers_lost"] == 1

    broker.add_worker()
    broker.wait_for_workers(2)
    with broker.client() as client:
        assert client.classify(shade_png(5))["predictions"][0]["label"] == "shade-5"


def test_ping_cli_waits_until_a_worker_has_joined(broker):
    command = [sys.executable, "-m", "model_backend", "ping", "--address", broker.frontend]
    not_yet = subprocess.run([*command, "--wait", "0.5"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert not_yet.returncode == 1 and '"ready": false' in not_yet.stdout
    waiting = subprocess.Popen([*command, "--wait", "30"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    broker.add_worker()
    out, _ = waiting.communicate(timeout=40)
    assert waiting.returncode == 0 and '"ready": true' in out


def test_requests_beyond_worker_capacity_wait_in_the_broker_and_are_all_answered(broker):
    broker.add_worker(delay=0.02)  # capacity 2 x max_batch 4 = 8 requests at a time
    broker.wait_for_workers(1)
    outcomes: list[bool] = []
    lock = threading.Lock()

    def load(offset: int) -> None:
        with broker.client(timeout_ms=5000, retries=0) as client:
            for i in range(5):
                shade = (i + offset) % 16
                ok = client.classify(shade_png(shade))["predictions"][0]["index"] == shade
                with lock:
                    outcomes.append(ok)

    run_threads(load, 20, timeout_s=60)
    assert len(outcomes) == 100 and all(outcomes)
