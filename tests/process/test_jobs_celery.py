"""Background callbacks on Celery and Redis (``--redis``): a job runs in a Celery worker process, and the worker
command starts, registers the dashboard's jobs and stops cleanly on SIGTERM.

Each test runs a real redis-server of its own (tests/support/redis_server.py) and
real Celery workers as subprocesses.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading

import pytest
from dash import CeleryManager

from tests.support import jobs_app
from tests.support.helpers import ROOT, wait_for

pytestmark = pytest.mark.slow  # Celery workers take seconds to start


class Worker:
    """A worker subprocess with its output (stdout and stderr) collected on a thread."""

    def __init__(self, command: list[str], env: dict[str, str] | None = None):
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
        self.lines: list[str] = []
        threading.Thread(target=lambda: self.lines.extend(self.process.stdout), daemon=True).start()

    def output(self) -> str:
        return "".join(self.lines)

    def wait_ready(self) -> None:
        wait_for(lambda: " ready." in self.output() or self.process.poll() is not None, timeout_s=60,
                 what="the Celery worker to be ready")
        assert self.process.poll() is None, self.output()

    def stop(self, timeout_s: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
                pytest.fail(f"the worker was still running {timeout_s} s after SIGTERM:\n{self.output()}")
        return self.process.returncode


def test_a_job_started_through_one_replica_runs_in_a_celery_worker_and_another_replica_answers(redis_url, tmp_path):
    """What the browser does: POST the callback, then poll with the handles it got back, here through another
    replica (a second app on the same Redis, with a data folder of its own) as a load balancer may send it."""
    replica_a, manager = jobs_app.build(redis_url, tmp_path / "replica-a")
    replica_b, _ = jobs_app.build(redis_url, tmp_path / "replica-b")
    assert isinstance(manager, CeleryManager)
    worker = Worker([sys.executable, "-m", "tests.support.jobs_app", redis_url, str(tmp_path / "worker-data")])
    try:
        worker.wait_ready()
        body = {"output": "out.children", "outputs": {"id": "out", "property": "children"},
                "inputs": [{"id": "go", "property": "n_clicks", "value": 21}], "changedPropIds": ["go.n_clicks"],
                "state": []}
        started = replica_a.server.test_client().post("/_dash-update-component", json=body)
        assert started.status_code == 200, started.get_data(as_text=True)
        handles = started.get_json()  # signed with the secret both replicas read from Redis
        poll = replica_b.server.test_client()
        progress: list[dict] = []

        def answer():
            reply = poll.post(f"/_dash-update-component?cacheKey={handles['cacheKey']}&job={handles['job']}",
                              json=body)
            assert reply.status_code == 200, reply.get_data(as_text=True)
            progress.extend([reply.get_json()["progress"]] if "progress" in reply.get_json() else [])
            return reply.get_json() if "response" in reply.get_json() else None

        reply = wait_for(answer, timeout_s=60, what="the job's answer through the other replica")
        number, _, pid = reply["response"]["out"]["children"].partition(" from process ")
        assert number == "42" and int(pid) not in (os.getpid(), worker.process.pid)  # a worker's pool process ran it
        assert progress == [{"progress.children": "doubling 21"}]  # the job's progress reached the browser too
    finally:
        assert worker.stop() == 0, worker.output()
    assert "warm shutdown" in worker.output().lower()


def test_the_jobs_worker_command_registers_the_dashboards_jobs_and_stops_on_sigterm(redis_url, tmp_path):
    worker = Worker([sys.executable, "-m", "dashboard", "jobs-worker", "--concurrency", "1",
                     "--data-dir", str(tmp_path / "data")], env={"WARMSERVE_DASH_REDIS": redis_url})
    try:
        worker.wait_ready()
        assert "Jobs worker for 1 background callback(s)" in worker.output()  # the monolith button's job
    finally:
        code = worker.stop()
    assert code == 0, worker.output()


def test_the_jobs_worker_needs_redis(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "WARMSERVE_DASH_REDIS"}
    done = subprocess.run([sys.executable, "-m", "dashboard", "jobs-worker", "--data-dir", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2
    assert "Expected a Redis URL for the jobs worker (--redis or WARMSERVE_DASH_REDIS)" in done.stderr


def test_the_dashboards_monolith_button_is_answered_by_the_jobs_worker(redis_url, tmp_path, dashboard, dash_settings):
    """The real ``serve --redis`` and ``jobs-worker`` (data folders of their own, as on two hosts): the button's job
    runs in the worker. Its image is not among the worker's kept uploads, so the answer is the view's panel for that
    (no TensorFlow here; the monolith itself is tested in tests/process/test_dashboard_monolith.py)."""
    import requests
    from plotly.utils import PlotlyJSONEncoder

    from dashboard.history.store import HistoryStore
    from dashboard.monolith.controller import run_monolith_view

    worker = Worker([sys.executable, "-m", "dashboard", "jobs-worker", "--concurrency", "1",
                     "--data-dir", str(tmp_path / "worker-data")], env={"WARMSERVE_DASH_REDIS": redis_url})
    try:
        worker.wait_ready()
        server = dashboard("tcp://127.0.0.1:1", "--redis", redis_url)
        dependencies = requests.get(server.url + "/_dash-dependencies", timeout=10).json()
        monolith = next(d for d in dependencies if "monolith-result.children" in d["output"])
        values = {("monolith-button", "n_clicks"): 1, ("monolith-image", "value"): "ab" * 32}
        entries = {kind: [{"id": d["id"], "property": d["property"], "value": values.get((d["id"], d["property"]))}
                          for d in monolith[kind]] for kind in ("inputs", "state")}
        outputs = [{"id": part.split(".")[0], "property": part.split(".")[1]}
                   for part in monolith["output"].strip(".").split("...")]
        body = {"output": monolith["output"], "outputs": outputs, **entries, "changedPropIds": ["monolith-button.n_clicks"]}
        started = requests.post(server.url + "/_dash-update-component", json=body, timeout=10)
        assert started.status_code == 200, started.text[:500]
        handles = started.json()

        def answer():
            reply = requests.post(server.url + "/_dash-update-component", json=body, timeout=10,
                                  params={"cacheKey": handles["cacheKey"], "job": handles["job"]})
            assert reply.status_code == 200, reply.text[:500]
            return reply.json().get("response")

        response = wait_for(answer, timeout_s=60, what="the monolith job's answer")
        # the panel the view gives for an image it does not keep, made here the same way
        settings = dash_settings()
        expected = run_monolith_view(settings, HistoryStore(settings.db_path), "ab" * 32)
        assert response["monolith-result"]["children"] == json.loads(json.dumps(expected, cls=PlotlyJSONEncoder))
        ran_there = re.search(r"Task background_callback_\w+\[[-\w]+\] succeeded", worker.output())
        assert ran_there, worker.output()
    finally:
        code = worker.stop()
    assert code == 0, worker.output()
