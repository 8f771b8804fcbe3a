"""A throwaway ``redis-server`` for tests: a free port on 127.0.0.1, a private folder, no persistence; stopped after.

``redis_url`` (a fixture) yields ``redis://127.0.0.1:PORT/0`` of a server of its own.
The binary comes from Debian's ``redis-server`` package (``./run.sh test`` installs
it); a test that needs it FAILS, never skips, when it is missing.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.helpers import free_port

START_TIMEOUT_S = 20.0


@dataclass
class RedisServer:
    process: subprocess.Popen
    port: int
    folder: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def log_text(self) -> str:
        path = self.folder / "redis.log"
        return path.read_text(errors="replace") if path.exists() else ""


def start_redis(folder: Path) -> RedisServer:
    """Start redis-server on a free port with its files in ``folder``; return once it answers PING."""
    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: these tests run a real Redis. "
                    "Install Debian's package (apt-get install -y redis-server; ./run.sh test does it).")
    folder.mkdir(parents=True, exist_ok=True)
    for _attempt in range(3):  # another test may take the free port before redis binds it
        port = free_port()
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--logfile", str(folder / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        server = RedisServer(process, port, folder)
        client = redis.Redis(port=port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + START_TIMEOUT_S
        while process.poll() is None and time.monotonic() < deadline:
            try:
                if client.ping():
                    return server
            except redis.RedisError:
                time.sleep(0.05)
        stop_redis(server)
    raise AssertionError(f"redis-server did not start:\n{server.log_text()[-2000:]}")


def stop_redis(server: RedisServer) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(10)


@pytest.fixture
def redis_server(tmp_path_factory):
    """A redis-server of this test's own (a fresh, empty database)."""
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    stop_redis(server)


@pytest.fixture
def redis_url(redis_server) -> str:
    return redis_server.url
