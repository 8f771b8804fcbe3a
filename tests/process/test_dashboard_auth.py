"""``python -m dashboard users add`` as a real command: a hashed entry, mode 0600, duplicates refused, and it logs in.

Roles and the users file in-process: tests/inprocess/test_dashboard_auth.py.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys

from dashboard.app import create_app, stop_app
from dashboard.settings import settings_from
from tests.support.dash import StubClient, basic_auth
from tests.support.helpers import ROOT


def test_users_add_writes_a_hashed_entry_that_logs_in(tmp_path):
    users_file = tmp_path / "secrets" / "users.txt"
    command = [sys.executable, "-m", "dashboard", "users", "add", str(users_file), "alice", "--role", "admin",
               "--password-stdin"]
    result = subprocess.run(command, input="correct horse\n", cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(os.stat(users_file).st_mode) == 0o600
    text = users_file.read_text()
    assert text.startswith("alice:admin:scrypt:") and "correct horse" not in text
    # a duplicate name is refused, unless --replace
    again = subprocess.run(command, input="other\n", cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "already" in again.stderr
    replaced = subprocess.run(command + ["--replace"], input="battery staple\n", cwd=ROOT, capture_output=True,
                              text=True, timeout=60)
    assert replaced.returncode == 0, replaced.stderr
    assert users_file.read_text().count("alice:") == 1

    settings = settings_from({"auth_file": str(users_file), "data_dir": tmp_path / "data"}, {})
    [user] = settings.users
    assert user.name == "alice" and user.role == "admin" and user.hashed
    app = create_app(settings, StubClient())
    try:
        http = app.server.test_client()
        assert http.get("/api/v1/history", headers=basic_auth("alice", "battery staple")).status_code == 200
        assert http.get("/api/v1/history", headers=basic_auth("alice", "correct horse")).status_code == 401
    finally:
        stop_app(app)
