"""The backend stops cleanly on SIGTERM and SIGINT within 2 s, even with requests in flight."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from model_backend.client import BackendClient
from model_backend.errors import BackendError
from tests.support.backend import start_backend
from tests.support.helpers import wait_for

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_the_backend_with_exit_code_zero(tmp_path, chelsea_png, signum):
    running = start_backend(tmp_path / "backend.log", "--max-batch", "4", "--decode-threads", "1")
    answered: list[str] = []

    def load() -> None:
        with BackendClient(running.client_settings) as client:
            for _ in range(20):
                try:
                    client.classify(chelsea_png)
                    answered.append("ok")
                except BackendError as exc:
                    answered.append(exc.code)
                    return

    thread = threading.Thread(target=load)
    thread.start()
    wait_for(lambda: answered, timeout_s=60, what="the first answer under load")
    signalled = time.monotonic()
    running.process.send_signal(signum)
    assert running.process.wait(30) == 0, running.log_text()[-2000:]
    elapsed = time.monotonic() - signalled
    assert elapsed < 2.0, f"the backend took {elapsed:.1f} s to stop"
    thread.join(30)
    assert "Backend stopped after serving" in running.log_text()
    assert answered[0] == "ok"
