"""Shared fixtures: real photos, and a real backend process started on a free port.

The ``backend`` fixture runs ``python -m model_backend serve`` as a subprocess
with the default offline model, waits for its ready line, and terminates it
(SIGTERM) at the end of the session, checking that it exits cleanly.
"""

from __future__ import annotations

import io
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from model_backend.settings import ClientSettings
from tools import processes
from tools.processes import Child

#: the dashboard fixtures and the dash_duo browser-options hook
pytest_plugins = ["tests.conftest_dash"]

ROOT = processes.ROOT
READY_PATTERN = processes.BACKEND_READY
START_TIMEOUT_S = 240


def png_bytes(array) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="session")
def chelsea_png() -> bytes:
    from skimage import data

    return png_bytes(data.chelsea())


@pytest.fixture(scope="session")
def coffee_png() -> bytes:
    from skimage import data

    return png_bytes(data.coffee())


@pytest.fixture(scope="session")
def chelsea_file(tmp_path_factory, chelsea_png) -> Path:
    path = tmp_path_factory.mktemp("photos") / "chelsea.png"
    path.write_bytes(chelsea_png)
    return path


@pytest.fixture(scope="session")
def coffee_file(tmp_path_factory, coffee_png) -> Path:
    path = tmp_path_factory.mktemp("photos") / "coffee.png"
    path.write_bytes(coffee_png)
    return path


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


def start_backend(log_path: Path, *extra_args: str, env: dict | None = None) -> BackendProcess:
    """Start ``python -m model_backend serve`` on a free port and wait for its ready line (tools.processes)."""
    args = ["-m", "model_backend", "serve", "--bind", "tcp://127.0.0.1:*", *extra_args]
    child = processes.start("backend", args, log_path, env={**os.environ, **(env or {})})
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


@pytest.fixture(scope="session")
def backend(tmp_path_factory) -> BackendProcess:
    """The default offline model served by a real backend process for the whole session."""
    log_path = tmp_path_factory.mktemp("backend") / "backend.log"
    running = start_backend(log_path, "--max-batch", "16")
    yield running
    code = stop_backend(running)
    assert code == 0, f"backend exited with {code}:\n{running.log_text()[-3000:]}"


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> Path:
    """A CURVE keys folder made by ``keys init`` (server, client and worker pairs, all allowed)."""
    from model_backend import keys_command

    folder = tmp_path_factory.mktemp("curve") / "KEYS"
    keys_command.init_keys(folder)
    return folder
