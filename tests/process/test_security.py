"""``python -m model_backend keys ...`` as a real command (the keys commands in-process: tests/unit/test_security.py)."""

from __future__ import annotations

import subprocess
import sys

from tests.support.helpers import ROOT


def test_keys_commands_run_as_a_module(tmp_path):
    result = subprocess.run([sys.executable, "-m", "model_backend", "keys", "init", str(tmp_path / "K")], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "K" / "server.key_secret").exists()
