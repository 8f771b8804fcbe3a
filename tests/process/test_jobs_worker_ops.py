"""What an operator sees of ``python -m dashboard jobs-worker``: its monolith runs in the Prometheus metrics where they
are scraped (its own ``--metrics-port`` on a host of its own; the dashboard's ``/metrics`` through a shared
``PROMETHEUS_MULTIPROC_DIR`` on one host), and a SIGTERM that ends it within its grace period: a run that ends in
time is answered as usual, one that does not is stopped and its user told so.

Real processes throughout: redis-server, ``python -m dashboard serve --redis`` and the jobs worker's real command,
whose monolith is a stand-in (no TensorFlow: it sleeps as long as its "image" file says, then prints a result).
The job is started the way a browser starts it (POST to Dash's callback route, then polling with the handles).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import requests

from dashboard.jobs.shutdown import STOPPED_MESSAGE
from tests.support.helpers import ROOT, wait_for

pytestmark = pytest.mark.slow  # Celery workers take seconds to start

#: the stand-in monolith: notes its start, sleeps as many seconds as its image file says, prints a monolith result
STANDIN = textwrap.dedent("""
    import json, os, sys, time
    image, log = sys.argv[1], sys.argv[2]
    with open(log, "a") as f:
        f.write(json.dumps({"event": "start", "pid": os.getpid()}) + "\\n")
    time.sleep(float(open(image).read()))
    print(json.dumps({"model": "stand-in", "predictions": [{"index": 1, "label": "one", "p": 1.0}],
                      "timings_ms": {"import": 1.0, "model_load": 1.0, "preprocess": 1.0, "inference": 1.0, "total": 4.0}}))
""")

#: the jobs worker's real command (dashboard/__main__.py) with the stand-in as its monolith
WORKER = textwrap.dedent("""
    import sys
    from dashboard.monolith import runner
    standin, log = sys.argv[1], sys.argv[2]
    runner.monolith_command = lambda path, model=None: [sys.executable, "-c", standin, str(path), log]
    from dashboard.__main__ import main
    sys.exit(main(["jobs-worker", *sys.argv[3:]]))
""")

METRICS_AT = re.compile(r"Metrics at http://127\.0\.0\.1:(\d+)/metrics")


class JobsWorker:
    """The worker process with its output collected on a thread."""

    def __init__(self, tmp_path: Path, data_dir: Path, *flags: str, env: dict[str, str]):
        self.runs_log = tmp_path / "monolith-runs.jsonl"
        self.process = subprocess.Popen(
            [sys.executable, "-c", WORKER, STANDIN, str(self.runs_log), "--data-dir", str(data_dir), *flags],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **env})
        self.lines: list[str] = []
        threading.Thread(target=lambda: self.lines.extend(self.process.stdout), daemon=True).start()
        wait_for(lambda: " ready." in self.output() or self.process.poll() is not None, timeout_s=60,
                 what="the jobs worker to be ready")
        assert self.process.poll() is None, self.output()

    def output(self) -> str:
        return "".join(self.lines)

    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{METRICS_AT.search(self.output()).group(1)}/metrics"

    def runs_started(self) -> int:
        return self.runs_log.read_text().count('"start"') if self.runs_log.exists() else 0

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def jobs_workers():
    started: list[JobsWorker] = []

    def start(*args, **kwargs) -> JobsWorker:
        started.append(JobsWorker(*args, **kwargs))
        return started[-1]

    yield start
    for worker in started:
        worker.close()


def keep_image(data_dir: Path, hold_s: float) -> str:
    """A kept upload (as the dashboard keeps one) whose content tells the stand-in how long to run; its sha256."""
    data = f"{hold_s}".encode()
    sha256 = hashlib.sha256(data).hexdigest()
    (data_dir / "uploads").mkdir(parents=True, exist_ok=True)
    (data_dir / "uploads" / f"{sha256}.img").write_bytes(data)
    return sha256


class MonolithButton:
    """The monolith button's background callback, driven over HTTP as the browser drives it."""

    def __init__(self, dashboard_url: str):
        self.url = dashboard_url
        dependencies = requests.get(self.url + "/_dash-dependencies", timeout=10).json()
        self.callback = next(d for d in dependencies if "monolith-result.children" in d["output"])

    def click(self, sha256: str) -> dict:
        """Start a run on a kept image; the request body and the job handles to poll with."""
        values = {("monolith-button", "n_clicks"): 1, ("monolith-image", "value"): sha256}
        entries = {kind: [{"id": d["id"], "property": d["property"], "value": values.get((d["id"], d["property"]))}
                          for d in self.callback[kind]] for kind in ("inputs", "state")}
        outputs = [{"id": part.split(".")[0], "property": part.split(".")[1]}
                   for part in self.callback["output"].strip(".").split("...")]
        body = {"output": self.callback["output"], "outputs": outputs, **entries,
                "changedPropIds": ["monolith-button.n_clicks"]}
        started = requests.post(self.url + "/_dash-update-component", json=body, timeout=10)
        assert started.status_code == 200, started.text[:500]
        return {"body": body, **started.json()}

    def answer(self, job: dict, timeout_s: float = 60) -> str:
        """The panel the user sees once the job is done, as JSON text."""
        def done():
            reply = requests.post(self.url + "/_dash-update-component", json=job["body"], timeout=10,
                                  params={"cacheKey": job["cacheKey"], "job": job["job"]})
            assert reply.status_code == 200, reply.text[:500]
            response = reply.json().get("response")
            return json.dumps(response["monolith-result"]["children"]) if response else None

        return wait_for(done, timeout_s=timeout_s, what="the monolith job's answer")


def monolith_runs(metrics_text: str, outcome: str = "ok") -> float:
    """``warmserve_monolith_runs_total{outcome=...}`` in a scrape (0 when absent)."""
    match = re.search(rf'^warmserve_monolith_runs_total\{{[^}}]*outcome="{outcome}"[^}}]*\}} (\S+)$', metrics_text, re.M)
    return float(match.group(1)) if match else 0.0


def scrape(url: str) -> str:
    reply = requests.get(url, timeout=10)
    assert reply.status_code == 200, reply.text[:300]
    return reply.text


def test_on_one_host_a_shared_metrics_folder_counts_the_workers_runs_on_the_dashboards_metrics(
        redis_url, tmp_path, dashboard, jobs_workers, monkeypatch):
    shared = tmp_path / "prometheus"
    shared.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(shared))  # the dashboard and the worker both inherit it
    data_dir = tmp_path / "data"  # the dashboard fixture's data folder: one host, one folder
    worker = jobs_workers(tmp_path, data_dir, "--concurrency", "1", env={"WARMSERVE_DASH_REDIS": redis_url})
    server = dashboard("tcp://127.0.0.1:1", "--redis", redis_url)
    assert monolith_runs(scrape(server.url + "/metrics")) == 0
    button = MonolithButton(server.url)
    assert "stand-in" in button.answer(button.click(keep_image(data_dir, 0.2)))
    assert worker.runs_started() == 1  # the worker's pool ran it, not the dashboard
    text = scrape(server.url + "/metrics")
    assert monolith_runs(text) == 1
    assert re.search(r"^warmserve_monolith_duration_seconds_count \S*1\.0$", text, re.M), text


def test_a_worker_on_a_host_of_its_own_serves_its_runs_and_stops_within_its_grace_period(
        redis_url, tmp_path, dashboard, jobs_workers):
    """``--metrics-port`` with the worker's private metrics folder; then SIGTERM while a short and a long run go on:
    the short one ends in time and is answered as usual, the long one is stopped and its user told to run it again,
    and the worker is gone within the grace period plus a few seconds."""
    grace_s = 3.0
    worker_data = tmp_path / "worker-data"  # a data folder of its own, as on another host
    worker = jobs_workers(tmp_path, worker_data, "--concurrency", "2", "--metrics-port", "0",
                          "--stop-grace-s", str(grace_s),
                          env={"WARMSERVE_DASH_REDIS": redis_url, "WARMSERVE_DASH_MONOLITH_CONCURRENCY": "2",
                               "PROMETHEUS_MULTIPROC_DIR": ""})
    server = dashboard("tcp://127.0.0.1:1", "--redis", redis_url)
    button = MonolithButton(server.url)
    assert "stand-in" in button.answer(button.click(keep_image(worker_data, 0.1)))
    assert monolith_runs(scrape(worker.metrics_url())) == 1  # where the operator scrapes this worker
    assert monolith_runs(scrape(server.url + "/metrics")) == 0  # the dashboard's own folder: not there

    short, long = button.click(keep_image(worker_data, 1.0)), button.click(keep_image(worker_data, 120.0))
    wait_for(lambda: worker.runs_started() == 3, timeout_s=30, what="both runs to start")
    signalled = time.monotonic()
    worker.process.send_signal(signal.SIGTERM)
    try:
        code = worker.process.wait(grace_s + 10)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the jobs worker was still running {grace_s + 10} s after SIGTERM:\n{worker.output()}")
    took = time.monotonic() - signalled
    assert code == 0, worker.output()
    assert took >= grace_s - 0.5, "the long run was given its grace period"
    assert "stand-in" in button.answer(short)
    stopped = button.answer(long)
    assert STOPPED_MESSAGE in stopped and "stand-in" not in stopped
    assert "stopping the monolith runs still going" in worker.output()
