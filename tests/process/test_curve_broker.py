"""CURVE at a broker process: ``broker --keys-dir`` and ``ping --keys-dir`` as real commands.

Workers and clients against an in-process broker are in tests/inprocess/test_curve_broker.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

from tests.support.helpers import ROOT


@pytest.mark.slow
def test_the_broker_and_ping_commands_take_keys_dir(keys, tmp_path):
    """Real processes: `broker --keys-dir` on the network-facing flags, `ping --keys-dir` gets through, `ping` without is refused."""
    log_path = tmp_path / "broker.log"
    with open(log_path, "wb") as log_file:
        broker_process = subprocess.Popen(
            [sys.executable, "-m", "model_backend", "broker", "--frontend", "tcp://127.0.0.1:*", "--backend", "tcp://127.0.0.1:*",
             "--keys-dir", str(keys)],
            cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while not (match := re.search(r"Broker ready on (\S+)", log_path.read_text())):
            assert broker_process.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        frontend = match.group(1)

        def ping(*extra: str) -> subprocess.CompletedProcess:
            return subprocess.run([sys.executable, "-m", "model_backend", "ping", "--address", frontend, *extra],
                                  cwd=ROOT, capture_output=True, text=True, timeout=60, env={**os.environ, "WARMSERVE_KEYS_DIR": ""})

        with_keys = ping("--keys-dir", str(keys))
        assert '"ready": false' in with_keys.stdout  # the broker answered (no workers yet)
        without = ping()
        assert without.returncode == 1 and without.stderr.startswith("unavailable:")
    finally:
        broker_process.terminate()
        broker_process.wait(10)
