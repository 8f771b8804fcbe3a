"""The web tier stays light: importing the dashboard never imports TensorFlow; `python -m dashboard serve` works."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import requests

from tests.support.helpers import free_port
from tests.support.helpers import ROOT



def test_importing_the_dashboard_does_not_import_tensorflow():
    code = ("import dashboard.app, dashboard.__main__, sys; "
            "assert 'tensorflow' not in sys.modules, 'dashboard imported tensorflow'; "
            "assert 'keras' not in sys.modules, 'dashboard imported keras'")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_serve_logs_its_url_and_answers_even_without_a_backend(tmp_path):
    port = free_port()
    env = {**os.environ, "WARMSERVE_DASH_DATA_DIR": str(tmp_path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "dashboard", "serve", "--port", str(port), "--backend", f"tcp://127.0.0.1:{free_port()}",
         "--threads", "2"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            if "Dashboard ready at" in line or process.poll() is not None:
                break
        assert re.search(rf"Dashboard ready at http://127\.0\.0\.1:{port}/", "".join(lines)), "".join(lines)
        assert requests.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 200
        health = requests.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=10)
        assert health.status_code == 503 and health.json()["error"]["code"] == "unavailable"
        assert (tmp_path / "history.sqlite3").exists()
    finally:
        process.terminate()
        process.wait(10)


def test_serve_refuses_bad_settings_with_a_clear_message():
    result = subprocess.run([sys.executable, "-m", "dashboard", "serve", "--port", "99999"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "Expected port" in result.stderr
