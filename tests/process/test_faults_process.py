"""Faults that need real processes: signals in every state, SIGKILL and restart under load, oversized frames.

The backends here are ``tests.support.standin_worker`` processes (the real BackendServer
with the numpy stand-in model), so they start in about a second; one test
starts the real ``python -m model_backend serve`` to stop it while its model loads.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import zmq
from zmq.utils.monitor import recv_monitor_message

from model_backend.client import BackendClient
from model_backend.errors import BackendError
from model_backend.settings import ClientSettings
from tests.support.helpers import ROOT
from tests.support.standin import shade_png
from tools import processes

pytestmark = pytest.mark.slow

STOP_WITHIN_S = 2.0


def launch(log_path: Path, args: list[str], pattern: str, timeout_s: float = 60) -> tuple[subprocess.Popen, re.Match]:
    """Start ``python ARGS`` and wait for ``pattern`` in its log (tools.processes)."""
    child = processes.start(log_path.stem, args, log_path)
    try:
        return child.process, child.wait_for(pattern, timeout_s, poll_s=0.05)
    except processes.ProcessError:
        child.kill()
        raise AssertionError(f"{args} did not log {pattern!r}:\n{log_path.read_text(errors='replace')[-3000:]}") from None


def standin(log_path: Path, *args: str) -> tuple[subprocess.Popen, str]:
    process, match = launch(log_path, ["-m", "tests.support.standin_worker", *args], r"Backend ready on (\S+)")
    return process, match.group(1)


def stop_time(process: subprocess.Popen, signum: int = signal.SIGTERM) -> tuple[float, int]:
    started = time.monotonic()
    process.send_signal(signum)
    try:
        code = process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return float("inf"), -9
    return time.monotonic() - started, code


class Load:
    """Threads classifying in a loop until stopped, each call's outcome and duration recorded."""

    def __init__(self, address: str, threads: int = 8, **settings):
        self.settings = ClientSettings(address=address, **settings)
        self.outcomes: list[tuple[str, float]] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(n,), daemon=True) for n in range(threads)]
        for thread in self.threads:
            thread.start()

    def run(self, offset: int) -> None:
        with BackendClient(self.settings) as client:
            i = offset
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    ok = client.classify(shade_png(i % 16))["predictions"][0]["index"] == i % 16
                    result = "ok" if ok else "wrong"
                except BackendError as exc:
                    result = exc.code
                self.outcomes.append((result, time.monotonic() - started))
                i += 1

    def wait_for(self, count: int, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.outcomes) < count:
            assert time.monotonic() < deadline, f"only {len(self.outcomes)} answers"
            time.sleep(0.02)

    def finish(self, timeout_s: float = 30) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout_s)
            assert not thread.is_alive(), "a caller hung"


def test_sigterm_stops_a_backend_under_slow_load_within_two_seconds(tmp_path):
    process, address = standin(tmp_path / "backend.log", "--bind", "tcp://127.0.0.1:*", "--delay", "0.4", "--max-batch", "1")
    load = Load(address, threads=8, timeout_ms=10_000, retries=0)
    load.wait_for(2)
    load.stop.set()  # no new calls after the signal: the ones in flight must all be answered
    elapsed, code = stop_time(process)
    load.finish()
    assert elapsed < STOP_WITHIN_S and code == 0, (elapsed, code, (tmp_path / "backend.log").read_text()[-2000:])
    assert "Backend stopped after serving" in (tmp_path / "backend.log").read_text()
    codes = {result for result, _ in load.outcomes}
    assert codes <= {"ok", "unavailable"}, codes  # in flight at the stop: a typed 'unavailable', never silence


def test_sigterm_stops_a_worker_whose_broker_is_gone_within_two_seconds(tmp_path):
    broker, match = launch(tmp_path / "broker.log", ["-m", "model_backend", "broker", "--frontend", "tcp://127.0.0.1:*",
                           "--backend", "tcp://127.0.0.1:*", "--heartbeat-ms", "200"], r"Broker ready on (\S+) \(workers connect to (\S+)\)")
    frontend, backend = match.groups()
    worker, _ = launch(tmp_path / "worker.log", ["-m", "tests.support.standin_worker", "--connect", backend, "--heartbeat-ms", "100"], r"Worker ready on")
    try:
        with BackendClient(ClientSettings(address=frontend)) as client:
            deadline = time.monotonic() + 20
            while not client.ping()["ready"]:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert client.classify(shade_png(4))["predictions"][0]["label"] == "shade-4"
        broker.kill()
        broker.wait()
        time.sleep(1.5)  # the worker keeps heartbeating into the void (and registering again)
        elapsed, code = stop_time(worker)
    finally:
        for process in (broker, worker):
            if process.poll() is None:
                process.kill()
                process.wait()
    assert elapsed < STOP_WITHIN_S and code == 0, (elapsed, code, (tmp_path / "worker.log").read_text()[-2000:])


def test_sigterm_stops_a_broker_under_load_within_two_seconds(tmp_path):
    broker, match = launch(tmp_path / "broker.log", ["-m", "model_backend", "broker", "--frontend", "tcp://127.0.0.1:*",
                           "--backend", "tcp://127.0.0.1:*", "--heartbeat-ms", "200"], r"Broker ready on (\S+) \(workers connect to (\S+)\)")
    frontend, backend = match.groups()
    worker, _ = launch(tmp_path / "worker.log", ["-m", "tests.support.standin_worker", "--connect", backend, "--delay", "0.3"], r"Worker ready on")
    try:
        load = Load(frontend, threads=8, timeout_ms=10_000, retries=0)
        load.wait_for(3)
        load.stop.set()  # no new calls after the signal: the ones in flight must all be answered
        elapsed, code = stop_time(broker)
        load.finish()
    finally:
        for process in (broker, worker):
            if process.poll() is None:
                process.kill()
                process.wait()
    assert elapsed < STOP_WITHIN_S and code == 0, (elapsed, code, (tmp_path / "broker.log").read_text()[-2000:])
    assert {result for result, _ in load.outcomes} <= {"ok", "unavailable", "not_ready"}


def test_sigkill_and_restart_under_load_gives_typed_errors_then_answers(tmp_path):
    process, address = standin(tmp_path / "first.log", "--bind", "tcp://127.0.0.1:*", "--delay", "0.05")
    timeout_ms = 1000
    load = Load(address, threads=8, timeout_ms=timeout_ms, retries=1, connect_timeout_ms=300)
    load.wait_for(20)
    process.kill()  # SIGKILL: requests in flight, no goodbye
    process.wait()
    killed_at = len(load.outcomes)
    time.sleep(1.5)
    restarted, _ = standin(tmp_path / "second.log", "--bind", address, "--delay", "0.05")
    try:
        load.wait_for(len(load.outcomes) + 40)  # callers fail fast during the outage: count from the restart
        load.finish()
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(10)
    results = [result for result, _ in load.outcomes]
    assert "wrong" not in results
    assert set(results) <= {"ok", "unavailable", "timeout"}, set(results)
    assert any(result != "ok" for result in results[killed_at - 8 :]), "callers must have seen the outage"
    assert results[-10:] == ["ok"] * 10, "after the restart, requests succeed again"
    bound_s = 2 * timeout_ms / 1000 + 2.0  # two attempts, plus slack for a loaded machine
    assert max(duration for _, duration in load.outcomes) < bound_s


def test_callers_waiting_on_a_killed_backend_are_answered_long_before_their_timeout(tmp_path):
    """The client watches its connection: a backend that dies mid-request is a typed error now, not after timeout_ms."""
    process, address = standin(tmp_path / "backend.log", "--bind", "tcp://127.0.0.1:*", "--delay", "3")
    timeout_ms, connect_timeout_ms = 20_000, 500
    answers: list[tuple[str, float]] = []

    def call() -> None:
        settings = ClientSettings(address=address, timeout_ms=timeout_ms, retries=1, connect_timeout_ms=connect_timeout_ms)
        with BackendClient(settings) as client:
            try:
                client.classify(shade_png(3))
                answers.append(("ok", time.monotonic()))
            except BackendError as exc:
                answers.append((exc.code, time.monotonic()))

    callers = [threading.Thread(target=call, daemon=True) for _ in range(6)]
    for thread in callers:
        thread.start()
    time.sleep(1.0)  # every request is in the slow model's hands
    killed_at = time.monotonic()
    process.kill()
    process.wait()
    for thread in callers:
        thread.join(timeout_ms / 1000)
    assert [code for code, _ in answers] == ["unavailable"] * 6
    slowest = max(at for _, at in answers) - killed_at
    assert slowest < 5.0, f"callers waited {slowest:.1f} s for a dead backend (their timeout is {timeout_ms / 1000:.0f} s)"


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def wait_for_disconnect(monitor: zmq.Socket, timeout_s: float = 10) -> bool:
    deadline = time.monotonic() + timeout_s
    while (remaining := deadline - time.monotonic()) > 0:
        if not monitor.poll(int(remaining * 1000) + 1):
            return False
        if recv_monitor_message(monitor)["event"] == zmq.EVENT_DISCONNECTED:
            return True
    return False


def test_an_oversized_frame_disconnects_its_sender_without_being_buffered(tmp_path):
    process, address = standin(tmp_path / "backend.log", "--bind", "tcp://127.0.0.1:*", "--max-image-bytes", str(1 << 20))
    try:
        with BackendClient(ClientSettings(address=address)) as client:
            client.classify(shade_png(1))
            before = rss_mb(process.pid)
            sock = zmq.Context.instance().socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
            sock.connect(address)
            frame_mb = 64
            sock.send_multipart([b"", b'{"v": 1, "id": "big", "op": "classify"}', b"\0" * (frame_mb << 20)])
            assert wait_for_disconnect(monitor), "the server must cut off a peer that sends an oversized frame"
            sock.disable_monitor()
            monitor.close()
            sock.close()
            assert client.classify(shade_png(7))["predictions"][0]["label"] == "shade-7"
            grown = rss_mb(process.pid) - before
            assert grown < frame_mb / 4, f"the backend grew by {grown:.0f} MB for a {frame_mb} MB frame"
        assert process.poll() is None
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(10)


def zmtp_dealer_greeting() -> bytes:
    """A ZMTP 3.0 NULL-mechanism greeting and READY command (what a DEALER sends first)."""
    greeting = b"\xff" + b"\0" * 8 + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\0") + b"\x00" + b"\0" * 31
    body = b"\x05READY" + b"\x0bSocket-Type" + struct.pack(">I", 6) + b"DEALER"
    return greeting + b"\x04" + bytes([len(body)]) + body


def test_a_frame_that_declares_8_gib_is_refused_at_its_header(tmp_path):
    process, address = standin(tmp_path / "backend.log", "--bind", "tcp://127.0.0.1:*")
    host, port = address.removeprefix("tcp://").rsplit(":", 1)
    try:
        before = rss_mb(process.pid)
        with socket.create_connection((host, int(port)), timeout=5) as raw:
            raw.settimeout(5)
            closed = False
            try:
                raw.sendall(zmtp_dealer_greeting())
                # a long frame of "8 GiB", 1 MiB of it sent (the server may cut us off while we are still sending)
                raw.sendall(b"\x02" + struct.pack(">Q", 8 << 30) + b"\0" * (1 << 20))
                while raw.recv(65536):
                    pass
                closed = True
            except (ConnectionResetError, BrokenPipeError):
                closed = True
            assert closed, "the server must drop a peer that declares an 8 GiB frame"
        with BackendClient(ClientSettings(address=address)) as client:
            assert client.classify(shade_png(5))["predictions"][0]["label"] == "shade-5"
        assert rss_mb(process.pid) - before < 16
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(10)


def test_sigterm_while_the_model_loads_ends_the_backend_within_two_seconds(tmp_path):
    log_path = tmp_path / "backend.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            # TensorFlow: a cached LiteRT model is ready within the second this test waits
            [sys.executable, "-m", "model_backend", "serve", "--bind", "tcp://127.0.0.1:*", "--runtime", "tensorflow"],
            cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT, env={**os.environ, "WARMSERVE_LOG_LEVEL": "INFO"},
        )
    time.sleep(1.0)  # importing TensorFlow / building the model
    assert process.poll() is None
    elapsed, code = stop_time(process)
    text = log_path.read_text(errors="replace")
    assert "Backend ready on" not in text, "the test meant to stop it during loading"
    assert elapsed < STOP_WITHIN_S and code == 0, (elapsed, code, text[-2000:])
