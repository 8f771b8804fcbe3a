"""A real ``python -m dashboard serve`` process for tests: started on a free port with a private data dir, stopped after.

``dashboard(backend, *flags) -> Dashboard`` (a fixture) starts one and waits for its ready line.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support.helpers import ROOT

READY = re.compile(r"Dashboard ready at http://127\.0\.0\.1:(\d+)/")


class Dashboard:
    """`python -m dashboard serve --port 0` with its output collected on a thread."""

    def __init__(self, tmp_path: Path, backend: str, *extra: str) -> None:
        env = {**os.environ, "WARMSERVE_DASH_DATA_DIR": str(tmp_path / "data"), "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dashboard", "serve", "--port", "0", "--backend", backend, *extra],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self.port: int | None = None
        ready = threading.Event()

        def collect() -> None:
            for line in self.process.stdout:
                self.lines.append(line)
                match = READY.search(line)
                if match:
                    self.port = int(match.group(1))
                    ready.set()
            ready.set()

        threading.Thread(target=collect, daemon=True).start()
        ready.wait(60)
        assert self.port, self.output()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return "".join(self.lines)

    def stop_within(self, seconds: float) -> float:
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(seconds + 3)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            pytest.fail(f"still running {seconds + 3} s after SIGTERM\n{self.output()}")
        return time.monotonic() - started

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def dashboard(tmp_path):
    started = []

    def start(backend: str, *extra: str) -> Dashboard:
        server = Dashboard(tmp_path, backend, *extra)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()
