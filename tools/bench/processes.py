"""The bench's child processes: long-running ones with their logs, one-shot JSON runs, and waits that need a client.

Starting, waiting for a ready line and stopping come from :mod:`tools.processes`
(shared with ``tools.fault_run`` and the tests); this module adds one-shot runs
that print a JSON line (the limit, the monolith), children driven by JSON lines
on stdin/stdout (:class:`LineChild`: the busy-cores children, the paired
stage's in-process request) and the waits that need a client (dashboard
health, workers registered at the broker).
"""

from __future__ import annotations

import contextlib
import json
import selectors
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from tools import processes
from tools.processes import ROOT, Child, ProcessError

from .plan import REQUEST_TIMEOUT_MS, BenchError

START_TIMEOUT_S = processes.START_TIMEOUT_S


@contextlib.contextmanager
def running(name: str, args: Sequence[str], log_dir: Path) -> Iterator[Child]:
    """:func:`tools.processes.running` with :func:`tools.processes.tool_env` (quiet TensorFlow, unbuffered output)."""
    with processes.running(name, args, log_dir, env=processes.tool_env()) as child:
        yield child


def run_json(command: Sequence[str], what: str, timeout_s: float, stderr=subprocess.PIPE) -> tuple[dict, str]:
    """Run ``python COMMAND`` to the end and return the last JSON line it printed, and its stderr text (if piped)."""
    completed = subprocess.run(
        [sys.executable, *command], cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, env=processes.tool_env(), timeout=timeout_s,
        **processes.popen_options(),
    )
    stdout = completed.stdout.decode("utf-8", "replace")
    errors = completed.stderr.decode("utf-8", "replace") if completed.stderr else ""
    if completed.returncode != 0:
        raise BenchError(f"{what[:1].upper()}{what[1:]} failed (exit {completed.returncode}): {stdout[-500:]} {errors[-1500:]}")
    return last_json_line(stdout, what), errors


class LineChild:
    """``python ARGS`` driven by JSON lines: one message a line on its stdin, one answer a line on its stdout (no pickle).

    ``what`` names the child in errors. A child that ends or stays silent where an answer is due is a
    :class:`~tools.bench.plan.BenchError` that says what came instead (and its exit code, if it ended).
    """

    def __init__(self, args: Sequence[str], what: str, stderr=None) -> None:
        self.what = what
        self.process = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=processes.tool_env(), stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=stderr, **processes.popen_options())

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self, message: dict) -> None:
        self.process.stdin.write((json.dumps(message) + "\n").encode())
        self.process.stdin.flush()

    def expect(self, key: str, timeout_s: float) -> dict:
        """The child's next JSON line, which must carry ``key``."""
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout_s):
                raise BenchError(f"Expected a {key!r} line from {self.what} within {timeout_s:.0f} s. Received: nothing")
        line = self.process.stdout.readline()
        try:
            message = json.loads(line)
        except ValueError:
            message = None
        if not isinstance(message, dict) or key not in message:
            if not line:  # its output ended: it is exiting
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(5)
            raise BenchError(f"Expected a {key!r} line from {self.what}. Received: {line[:300]!r} (exit {self.process.poll()})")
        return message

    def close_input(self) -> None:
        """End its input: a child that reads until the end of its input then exits."""
        if not self.process.stdin.closed:
            with contextlib.suppress(OSError):
                self.process.stdin.close()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Close its input, give it ``timeout_s`` to exit, then kill it."""
        self.close_input()
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()


def last_json_line(text: str, what: str) -> dict:
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise BenchError(f"Expected a JSON line from {what}. Received: {text[-500:]!r}")


def client(address: str):
    """A BackendClient for the bench: a long timeout, no retries (a failure is counted, not hidden)."""
    from model_backend.client import BackendClient
    from model_backend.settings import ClientSettings

    return BackendClient(ClientSettings(address=address, timeout_ms=REQUEST_TIMEOUT_MS, retries=0))


def wait_for_health(base_url: str, timeout_s: float = 60) -> None:
    """Until the dashboard's ``/api/v1/health`` answers 200; BenchError after ``timeout_s``."""
    import requests

    deadline, last = time.monotonic() + timeout_s, "no answer"
    while time.monotonic() < deadline:
        try:
            response = requests.get(base_url + "/api/v1/health", timeout=5)
            if response.status_code == 200:
                return
            last = f"HTTP {response.status_code}: {response.text[:200]}"
        except requests.RequestException as exc:
            last = str(exc)
        time.sleep(0.2)
    raise BenchError(f"dashboard not healthy after {timeout_s:.0f} s: {last}")


def wait_for_workers(address: str, count: int, children: Sequence[Child], timeout_s: float = START_TIMEOUT_S) -> None:
    """Until the broker at ``address`` has ``count`` workers; ProcessError if one of ``children`` exits first."""
    from model_backend.errors import BackendError

    deadline = time.monotonic() + timeout_s
    with client(address) as bench_client:
        while time.monotonic() < deadline:
            for child in children:
                if child.process.poll() is not None:
                    raise ProcessError(f"{child.name} exited with {child.process.returncode}:\n{processes.tail(child.log_path)}")
            with contextlib.suppress(BackendError):
                if bench_client.ping().get("workers", 0) >= count:
                    return
            time.sleep(0.5)
    raise BenchError(f"{count} workers did not register with the broker within {timeout_s:.0f} s")
