"""The monolith baseline: one fresh process per request, same model, same answer as the service."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from model_backend import protocol
from model_backend.client import BackendClient
from tests.support.helpers import ROOT

pytestmark = pytest.mark.slow


def run_monolith(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "model_backend.monolith", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_monolith_prints_stage_timings_and_agrees_with_the_service(backend, chelsea_file):
    completed = run_monolith(str(chelsea_file), "--json")
    assert completed.returncode == 0, completed.stderr + completed.stdout
    result = json.loads(completed.stdout)
    assert result["model"] == "efficientnet-lite0"
    timings = result["timings_ms"]
    assert tuple(timings) == protocol.MONOLITH_STAGES
    for stage in ("import", "model_load", "preprocess", "inference", "total"):
        assert timings[stage] > 0, stage
    assert timings["total"] >= timings["import"] + timings["model_load"] + timings["inference"]
    assert len(result["predictions"]) == 5
    with BackendClient(backend.client_settings) as client:
        service = client.classify(chelsea_file.read_bytes())
    assert result["predictions"][0]["index"] == service["predictions"][0]["index"]
    assert result["predictions"][0]["label"] == "Egyptian cat"
    assert result["predictions"][0]["p"] == pytest.approx(service["predictions"][0]["p"], abs=1e-3)
    # Recording the run in the history (the rows asserted here before) is the dashboard's `monolith` command now.


def test_monolith_bad_image_is_a_json_error(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    completed = run_monolith(str(bad), "--json")
    assert completed.returncode == 2
    assert json.loads(completed.stdout)["error"]["code"] == "bad_image"
    # Recording it in the history is the dashboard's `monolith` command (tests/test_dashboard_monolith.py).
