"""Prometheus metrics across processes, and the API's discoverability, on real processes.

- prometheus_client's multiprocess mode: samples recorded by separate
  processes (as Dash's background jobs are) add up in one scrape.
- A real ``python -m dashboard serve`` behind a stand-in backend: /metrics
  counts API requests by outcome and code; /api/v1/openapi.json names this
  server; the API panel's snippets, run as a user would run them, work.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import requests
from openapi_spec_validator import validate

from dashboard.api_panel.snippets import curl_multipart, curl_raw, python_requests
from tests.support.helpers import ROOT

RECORD_ONE = ("from dashboard.metrics import registry as m; "
              "m.record_classify('api', True, None, 4.0); m.record_monolith(True, None, 3000.0)")


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus text exposition (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        sample, _, label_text = key.partition("{")
        got = ",".join(sorted(label_text.rstrip("}").split(","))) if label_text else ""
        if sample == name and got == want:
            return float(value)
    return 0.0


def test_samples_from_several_processes_add_up_in_one_scrape(tmp_path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for _ in range(3):  # three job processes, each gone before the scrape
        subprocess.run([sys.executable, "-c", RECORD_ONE], cwd=ROOT, env=env, check=True, timeout=60)
    scrape = subprocess.run([sys.executable, "-c", "from dashboard.metrics import registry as m; print(m.exposition()[0].decode())"],
                            cwd=ROOT, env=env, check=True, timeout=60, capture_output=True, text=True).stdout
    assert metric(scrape, "warmserve_dashboard_requests_total", source="api", outcome="ok", code="none") == 3
    assert metric(scrape, "warmserve_monolith_runs_total", outcome="ok", code="none") == 3
    assert metric(scrape, "warmserve_monolith_duration_seconds_bucket", le="3.0") == 3
    assert metric(scrape, "warmserve_monolith_duration_seconds_bucket", le="2.0") == 0


@pytest.fixture
def served(dashboard, standin_server, tmp_path):
    """A dashboard process behind a stand-in backend, and a photo.jpg in a working folder."""
    from tests.support.standin import shade_png

    server = dashboard(standin_server())
    work = tmp_path / "work"
    work.mkdir()
    (work / "photo.jpg").write_bytes(shade_png(120))
    return server, work


def test_metrics_count_api_requests_by_outcome_and_code(served) -> None:
    server, work = served
    ok = requests.post(f"{server.url}/api/v1/classify", files={"image": ("p.png", (work / "photo.jpg").read_bytes())}, timeout=30)
    bad = requests.post(f"{server.url}/api/v1/classify", files={"image": ("x.png", b"not an image")}, timeout=30)
    assert ok.status_code == 200 and bad.status_code == 400
    response = requests.get(f"{server.url}/metrics", timeout=10)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain")
    text = response.text
    assert metric(text, "warmserve_dashboard_requests_total", source="api", outcome="ok", code="none") == 1
    assert metric(text, "warmserve_dashboard_requests_total", source="api", outcome="error", code="bad_image") == 1
    assert metric(text, "warmserve_backend_stage_duration_seconds_count", stage="inference") == 1
    assert metric(text, "warmserve_backend_queue_capacity") > 0


def test_openapi_document_is_served_for_this_server(served) -> None:
    server, _ = served
    response = requests.get(f"{server.url}/api/v1/openapi.json", timeout=10)
    assert response.status_code == 200
    document = response.json()
    validate(document)
    assert document["servers"][0]["url"] == server.url


def test_the_api_panels_snippets_work_when_run(served) -> None:
    server, work = served
    for command in (curl_multipart(server.url, False), curl_raw(server.url, False)):
        done = subprocess.run(command, shell=True, cwd=work, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        body = json.loads(done.stdout)
        assert body["image"] == "photo.jpg" and body["predictions"], body
    script = work / "snippet.py"
    script.write_text(python_requests(server.url, False))
    done = subprocess.run([sys.executable, str(script)], cwd=work, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 6 and lines[-1].endswith(" ms") and "%" in lines[0]
