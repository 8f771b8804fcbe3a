"""No single point of failure: a broker killed and restarted gets its workers back, a worker serves two brokers, clients fail over.

Real processes (brokers, stand-in workers and servers: no TensorFlow), killed with SIGKILL.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from model_backend.client import BackendClient
from model_backend.errors import BackendError
from model_backend.settings import ClientSettings
from tests.support.helpers import ROOT, free_port, wait_for
from tests.support.standin import shade_png

pytestmark = pytest.mark.slow


class Processes:
    """Brokers, workers and servers started by one test, each logging to its own file; all killed at the end."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.running: list[subprocess.Popen] = []

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.folder / f"{name}.log", "ab")
        process = subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.running.append(process)
        return process

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")

    def broker(self, name: str, frontend_port: int, backend_port: int) -> tuple[str, str]:
        """A broker process on these ports (heartbeats every 200 ms); returns (frontend, backend) once it is ready."""
        frontend, backend = f"tcp://127.0.0.1:{frontend_port}", f"tcp://127.0.0.1:{backend_port}"
        before = self.log(name).count("Broker ready on") if (self.folder / f"{name}.log").exists() else 0
        process = self.start(name, "model_backend", "broker", "--frontend", frontend, "--backend", backend, "--heartbeat-ms", "200")
        wait_for(lambda: self.log(name).count("Broker ready on") > before or process.poll() is not None, 30, f"broker {name}")
        assert process.poll() is None, self.log(name)
        return frontend, backend

    def worker(self, name: str, connect: str) -> subprocess.Popen:
        return self.start(name, "tests.support.standin_worker", "--connect", connect, "--heartbeat-ms", "200")

    def server(self, name: str, delay: float = 0.0) -> tuple[subprocess.Popen, str]:
        process = self.start(name, "tests.support.standin_worker", "--bind", "tcp://127.0.0.1:*", "--delay", str(delay))
        match = wait_for(lambda: re.search(r"Backend ready on (\S+)", self.log(name)) or process.poll(), 30, f"server {name}")
        assert process.poll() is None, self.log(name)
        return process, match.group(1)

    def close(self) -> None:
        for process in self.running:
            if process.poll() is None:
                process.kill()
            process.wait(10)


@pytest.fixture
def processes(tmp_path):
    running = Processes(tmp_path)
    yield running
    running.close()


def client(address: str, **settings) -> BackendClient:
    return BackendClient(ClientSettings(address=address, connect_timeout_ms=500, **settings))


def workers_at(address: str) -> list[int]:
    """The pids of the workers registered at the broker at ``address`` ([] while it is down)."""
    try:
        with client(address) as probe:
            return [worker["pid"] for worker in probe.info()["workers"]]
    except BackendError:
        return []


def classifies(address: str, shades=range(8)) -> bool:
    with client(address) as caller:
        return all(caller.classify(shade_png(shade))["predictions"][0]["index"] == shade for shade in shades)


def test_a_broker_killed_and_restarted_on_its_address_gets_its_worker_back_with_nothing_else_restarted(processes):
    ports = free_port(), free_port()
    frontend, backend = processes.broker("broker", *ports)
    worker = processes.worker("worker", backend)
    wait_for(lambda: workers_at(frontend) == [worker.pid], 30, "the worker to register")
    assert classifies(frontend)

    processes.running[0].kill()  # SIGKILL: the worker is told nothing
    processes.running[0].wait(10)
    processes.broker("broker", *ports)
    wait_for(lambda: workers_at(frontend) == [worker.pid], 20, "the same worker to register again by itself")
    assert classifies(frontend)
    assert worker.poll() is None
    assert "registering again" in processes.log("worker") or "asked this worker to register again" in processes.log("worker")


def test_a_worker_on_two_brokers_serves_both_and_the_survivor_keeps_serving_when_one_is_killed(processes):
    front_a, back_a = processes.broker("broker-a", free_port(), free_port())
    broker_a = processes.running[-1]
    front_b, back_b = processes.broker("broker-b", free_port(), free_port())
    worker = processes.worker("worker", f"{back_a},{back_b}")
    wait_for(lambda: workers_at(front_a) == [worker.pid] and workers_at(front_b) == [worker.pid], 30, "the worker at both brokers")
    assert classifies(front_a) and classifies(front_b)

    broker_a.kill()
    broker_a.wait(10)
    assert classifies(front_b, range(16))
    assert classifies(f"{front_a},{front_b}"), "a client listing both brokers fails over to the survivor"
    assert worker.poll() is None


def test_a_client_fails_over_when_its_server_is_killed_mid_request_and_names_every_address_when_all_are_dead(processes):
    slow, slow_address = processes.server("slow", delay=5.0)  # holds the request long enough to be killed with it
    fast, fast_address = processes.server("fast")
    outcome: list[object] = []
    with client(f"{slow_address},{fast_address}", timeout_ms=30_000, retries=0) as caller:
        call = threading.Thread(target=lambda: outcome.append(caller.classify(shade_png(4))))
        call.start()
        wait_for(lambda: _in_flight(slow_address) == 1, 10, "the request to reach the slow server")
        slow.kill()
        call.join(30)
        assert outcome and outcome[0]["predictions"][0]["index"] == 4, "answered by the second server in the same call"

        fast.kill()
        fast.wait(10)
        with pytest.raises(BackendError) as info:
            caller.classify(shade_png(4))
    assert info.value.code == "unavailable"
    assert slow_address in info.value.message and fast_address in info.value.message


def _in_flight(address: str) -> int:
    with client(address, ping_timeout_ms=2000) as probe:
        return probe.info()["in_flight"]
