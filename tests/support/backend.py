"""A real backend process (``python -m model_backend serve``, with TensorFlow) on a free port, started and stopped.

The session's ``backend`` fixture (tests/conftest.py) and the shutdown tests use it;
starting and waiting for the ready line is tools.processes' job, shared with the bench.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from model_backend.settings import ClientSettings
from tools import processes
from tools.processes import Child

READY_PATTERN = processes.BACKEND_READY
START_TIMEOUT_S = 240


@dataclass
class BackendProcess:
    """A running backend subprocess."""

    process: subprocess.Popen
    address: str
    log_path: Path
    child: Child | None = None

    @property
    def client_settings(self) -> ClientSettings:
        return ClientSettings(address=self.address, timeout_ms=20_000, retries=0)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_backend(log_path: Path, *extra_args: str, env: dict | None = None,
                  launcher: tuple[str, ...] = ("-m", "model_backend"), name: str = "backend") -> BackendProcess:
    """Start ``python LAUNCHER serve`` (default ``-m model_backend``) on a free port and wait for its ready line."""
    args = [*launcher, "serve", "--bind", "tcp://127.0.0.1:*", *extra_args]
    child = processes.start(name, args, log_path, env={**os.environ, **(env or {})})
    try:
        match = child.wait_for(READY_PATTERN, START_TIMEOUT_S)
    except processes.ProcessError:
        child.kill()
        raise
    return BackendProcess(process=child.process, address=match.group(1), log_path=log_path, child=child)


def stop_backend(backend: BackendProcess, timeout_s: float = 20) -> int:
    """SIGTERM, then wait; kill if it does not stop. Returns the exit code."""
    if backend.child is not None:
        return backend.child.stop(timeout_s)
    return Child("backend", backend.process, backend.log_path).stop(timeout_s)
