"""The long-running roles log to stdout, as containers and process managers expect (issue 11: "logs to
stdout"); stderr stays empty while they run normally. One-shot commands keep stdout for their output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from model_backend.broker import READY_MESSAGE as BROKER_READY
from tests.support.helpers import ROOT


def run_until(command: list[str], ready: str, env: dict | None = None) -> tuple[str, str, int]:
    """Start ``command``, read its stdout until the ``ready`` line, SIGTERM it; (stdout, stderr, exit code)."""
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, **(env or {})})
    seen = []
    try:
        for line in child.stdout:
            seen.append(line)
            if ready in line:
                break
        child.send_signal(signal.SIGTERM)
        rest, errors = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return "".join(seen) + rest, errors, child.returncode


def test_the_broker_logs_to_stdout():
    out, err, code = run_until([sys.executable, "-m", "model_backend", "broker", "--frontend", "tcp://127.0.0.1:*",
                                "--backend", "tcp://127.0.0.1:*"], BROKER_READY)
    assert BROKER_READY in out and " INFO " in out
    assert err == "" and code == 0


def test_the_dashboard_logs_to_stdout(tmp_path):
    out, err, code = run_until([sys.executable, "-m", "dashboard", "serve", "--host", "127.0.0.1", "--port", "0",
                                "--backend", "tcp://127.0.0.1:9", "--data-dir", str(tmp_path)], "Dashboard ready at")
    assert "Dashboard ready at http://127.0.0.1:" in out
    assert err == "" and code == 0


def test_a_one_shot_command_keeps_stdout_for_its_answer():
    done = subprocess.run([sys.executable, "-m", "model_backend", "ping", "--address", "tcp://127.0.0.1:9"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stdout == "" and "unavailable" in done.stderr
