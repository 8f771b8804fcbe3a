"""A real `python -m dashboard serve` under attack: health within 1 s, SIGTERM within 2 s.

- Slowloris: hundreds of idle and half-sent connections, every request thread
  stuck on a backend that never answers, and /api/v1/health still answers
  within 1 s (it reads the status poller's state on its own threads).
- SIGTERM: the process exits 0 within 2 s whatever it is doing (idle, busy
  requests, a background monolith job), and leaves no child process behind.
"""

from __future__ import annotations

import socket
import threading
import time

import psutil
import pytest
import requests

pytestmark = pytest.mark.slow


def open_slowloris(port: int, idle: int, partial: int) -> list[socket.socket]:
    """``idle`` connections that send nothing and ``partial`` ones stuck half-way through a request."""
    sockets = []
    for i in range(idle + partial):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        if i >= idle:
            sock.sendall(b"POST /api/v1/classify HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\nabc")
        sockets.append(sock)
    return sockets


def occupy_threads(url: str, count: int) -> list[threading.Thread]:
    """``count`` classify requests that wait on a backend that never replies."""
    def hang() -> None:
        try:
            requests.post(url + "/api/v1/classify", data=b"\x89PNG not really", timeout=30)
        except requests.RequestException:
            pass

    threads = [threading.Thread(target=hang, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads


def timed_health(url: str) -> tuple[requests.Response, float]:
    started = time.monotonic()
    response = requests.get(url + "/api/v1/health", timeout=20)
    return response, time.monotonic() - started


def test_health_answers_within_1_s_through_slowloris_and_a_dead_backend(dashboard, silent_backend):
    server = dashboard(silent_backend, "--threads", "2")
    sockets = open_slowloris(server.port, idle=150, partial=60)
    try:
        occupy_threads(server.url, 4)  # more than the request threads, all waiting on the silent backend
        time.sleep(0.5)
        for _ in range(3):
            response, elapsed = timed_health(server.url)
            assert elapsed < 1.0, f"health took {elapsed:.2f} s"
            assert response.status_code == 503
            body = response.json()
            assert body["status"] in ("unavailable", "starting") and "age_s" in body
    finally:
        for sock in sockets:
            sock.close()


def test_health_reports_the_age_of_the_state(dashboard, silent_backend):
    server = dashboard(silent_backend, "--threads", "2")
    response, elapsed = timed_health(server.url)
    assert elapsed < 1.0
    body = response.json()
    assert body["age_s"] >= 0 and body["backend"]["address"] == silent_backend


def test_sigterm_stops_an_idle_dashboard_within_2_s(dashboard, silent_backend):
    server = dashboard(silent_backend)
    assert requests.get(server.url + "/api/v1/history", timeout=10).status_code == 200
    elapsed = server.stop_within(2.0)
    assert elapsed < 2.0, server.output()
    assert server.process.returncode == 0, server.output()
    assert "Stopped" in server.output()


def test_sigterm_stops_a_busy_dashboard_within_2_s(dashboard, silent_backend):
    server = dashboard(silent_backend, "--threads", "2")
    sockets = open_slowloris(server.port, idle=50, partial=20)
    try:
        occupy_threads(server.url, 6)
        time.sleep(0.7)
        elapsed = server.stop_within(2.0)
        assert elapsed < 2.0, server.output()
        assert server.process.returncode == 0, server.output()
    finally:
        for sock in sockets:
            sock.close()


def test_sigterm_ends_a_running_monolith_job_within_2_s(dashboard, silent_backend, tmp_path, chelsea_png):
    from dashboard.classify.uploads import Upload
    from dashboard.common.kept_uploads import keep_upload

    upload = Upload("chelsea.png", chelsea_png, "api")
    keep_upload(tmp_path / "data" / "uploads", upload)
    server = dashboard(silent_backend)
    dependencies = requests.get(server.url + "/_dash-dependencies", timeout=10).json()
    monolith = next(d for d in dependencies if "monolith-result.children" in d["output"])
    values = {("monolith-button", "n_clicks"): 1, ("monolith-image", "value"): upload.sha256,
              ("monolith-image", "options"): [{"label": upload.name, "value": upload.sha256}]}

    def entries(kind: str) -> list[dict]:
        return [{"id": d["id"], "property": d["property"], "value": values.get((d["id"], d["property"]))}
                for d in monolith[kind]]

    outputs = [{"id": part.split(".")[0], "property": part.split(".")[1]}
               for part in monolith["output"].strip(".").split("...")]
    body = {"output": monolith["output"], "outputs": outputs, "inputs": entries("inputs"),
            "state": entries("state"), "changedPropIds": ["monolith-button.n_clicks"]}
    response = requests.post(server.url + "/_dash-update-component", json=body, timeout=10)
    assert response.status_code == 200, response.text[:500]
    parent = psutil.Process(server.process.pid)
    deadline = time.monotonic() + 20
    descendants: list[psutil.Process] = []
    while time.monotonic() < deadline:  # wait for the job process (and the monolith it starts)
        descendants = parent.children(recursive=True)
        if len(descendants) >= 2:
            break
        time.sleep(0.1)
    assert descendants, "no background job started\n" + server.output()
    elapsed = server.stop_within(2.0)
    assert elapsed < 2.0, server.output()
    assert server.process.returncode == 0, server.output()
    time.sleep(0.2)
    assert not [p for p in descendants if p.is_running() and p.status() != psutil.STATUS_ZOMBIE], server.output()


def test_the_real_server_refuses_an_unauthenticated_150_mb_body_at_once(dashboard, silent_backend, tmp_path):
    users = tmp_path / "users.txt"
    users.write_text("alice:s3cret\n")
    server = dashboard(silent_backend, "--auth-file", str(users))
    process = psutil.Process(server.process.pid)
    before = process.memory_info().rss
    for path in (b"/_dash-update-component", b"/api/v1/classify"):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        try:
            started = time.monotonic()
            sock.sendall(b"POST " + path + b" HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 157286400\r\n\r\n{\"output\": \"")
            reply = sock.recv(65536)
            elapsed = time.monotonic() - started
            assert reply.startswith(b"HTTP/1.1 401"), reply[:200]
            assert b"www-authenticate: basic" in reply.lower() and elapsed < 1.0
            sent = 0
            try:  # keep pushing the body: the server neither reads nor keeps it
                chunk = b"A" * (1024 * 1024)
                while sent < 150 * 1024 * 1024:
                    sock.sendall(chunk)
                    sent += len(chunk)
            except OSError:
                pass
        finally:
            sock.close()
    time.sleep(0.3)
    assert process.memory_info().rss - before < 50 * 1024 * 1024
    assert requests.get(server.url + "/api/v1/history", auth=("alice", "s3cret"), timeout=10).status_code == 200
