"""The bench's child processes: long-running ones with their logs, one-shot JSON runs, and waits that need a client.

Starting, waiting for a ready line and stopping come from :mod:`tools.processes`
(shared with ``tools.fault_run`` and the tests); this module adds one-shot runs
that print a JSON line (the limit, the monolith) and the waits that need a
client (dashboard health, workers registered at the broker).
"""

from __future__ import annotations

import contextlib
import json
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
