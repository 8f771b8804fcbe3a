"""Running the monolith from the dashboard as real processes: the time limit, one real run recorded in the history,
the command line built from the server's settings, and ``python -m dashboard monolith``.

Output parsing and what the browser may send (nothing that chooses a model or a file) are in
tests/unit/test_dashboard_monolith.py.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dashboard.classify.uploads import Upload
from dashboard.common.kept_uploads import keep_upload
from dashboard.history.records import MONOLITH, service_record
from dashboard.history.store import HistoryStore
from dashboard.monolith import controller
from dashboard.monolith import runner as monolith_runner
from dashboard.monolith.runner import monolith_command, run_monolith_on_file
from tests.support.dash import HOSTILE
from tests.support.helpers import CAT_CLASSES, ROOT


@pytest.mark.slow  # the monolith process starts importing TensorFlow
def test_a_run_over_the_time_limit_is_stopped(tmp_path, chelsea_file):
    progress = []
    result, wall_ms = run_monolith_on_file(chelsea_file, timeout_s=0.3, on_progress=progress.append)
    assert result["error"]["code"] == "timeout" and "stopped" in result["error"]["message"]
    assert wall_ms < 5000 and progress


@pytest.mark.slow
def test_real_monolith_run_is_shown_and_recorded(dash_settings, chelsea_png):
    settings = dash_settings()
    store = HistoryStore(settings.db_path)
    upload = Upload("chelsea.png", chelsea_png)
    keep_upload(settings.uploads_dir, upload)
    progress = []
    store.add(service_record("chelsea.png", upload.sha256, {"predictions": []}, 10.0))  # classified first, as in the UI
    panel = controller.run_monolith_view(settings, store, upload.sha256, progress.append)
    text = json.dumps(panel.to_plotly_json(), default=lambda o: o.to_plotly_json())
    [row] = store.recent(kind=MONOLITH)
    assert row["ok"] == 1, row["error_message"]
    assert row["top1_index"] in CAT_CLASSES and row["source"] == "ui" and row["sha256"] == upload.sha256
    assert row["import_ms"] > 0 and row["model_load_ms"] > 0 and row["latency_ms"] >= row["backend_total_ms"] * 0.9
    assert "import TensorFlow" in text and "chelsea.png" in text
    assert progress  # elapsed seconds were reported while it ran


STANDIN_RESULT = ("import json; print(json.dumps({'model': 'stand-in', 'predictions': [{'index': 1, 'label': 'one', 'p': 1.0}],"
                  " 'timings_ms': {'import': 1, 'model_load': 1, 'preprocess': 1, 'inference': 1, 'total': 4}}))")


def test_the_command_line_takes_the_model_from_settings_and_the_name_from_the_history(dash_settings, monkeypatch):
    settings = dash_settings(monolith_model="resnet50")
    store = HistoryStore(settings.db_path)
    upload = Upload("cat.png", b"some image bytes")
    keep_upload(settings.uploads_dir, upload)
    store.add(service_record("cat.png", upload.sha256, {"predictions": []}, 10.0))
    commands = []

    def recording(image_path, model=None):
        commands.append(monolith_command(image_path, model))
        return [sys.executable, "-c", STANDIN_RESULT]

    monkeypatch.setattr(monolith_runner, "monolith_command", recording)
    panel = controller.run_monolith_view(settings, store, upload.sha256)
    [command] = commands
    assert command == [sys.executable, "-m", "model_backend.monolith", str(settings.uploads_dir / f"{upload.sha256}.img"),
                       "--json", "--model", "resnet50"]
    assert not any(str(h) in arg for h in HOSTILE if h and isinstance(h, str) and h != "resnet50" for arg in command)
    text = json.dumps(panel.to_plotly_json(), default=lambda o: o.to_plotly_json())
    assert "Monolith on cat.png" in text and "stand-in" in text
    [row] = store.recent(kind=MONOLITH)
    assert row["image"] == "cat.png" and row["ok"] == 1 and row["source"] == "ui"


def run_command(*args: str) -> subprocess.CompletedProcess:
    """``python -m dashboard monolith ...`` as a user runs it."""
    return subprocess.run([sys.executable, "-m", "dashboard", "monolith", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.slow
def test_the_monolith_command_prints_its_json_and_records_the_run(chelsea_file, tmp_path):
    db = tmp_path / "history.sqlite3"
    completed = run_command(str(chelsea_file), "--db", str(db), "--model", "efficientnet-lite0")
    assert completed.returncode == 0, completed.stderr + completed.stdout
    result = json.loads(completed.stdout)
    timings = result["timings_ms"]
    assert result["model"] == "efficientnet-lite0" and result["predictions"][0]["label"] == "Egyptian cat"
    (row,) = HistoryStore(db).recent(kind="monolith")
    assert row["ok"] and row["image"] == "chelsea.png" and row["top1_label"] == "Egyptian cat"
    assert row["import_ms"] == pytest.approx(timings["import"])


@pytest.mark.slow  # the monolith process starts importing TensorFlow
def test_the_monolith_command_records_a_bad_image_as_an_error(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    completed = run_command(str(bad), "--data-dir", str(tmp_path / "data"))
    assert completed.returncode == 2
    assert json.loads(completed.stdout)["error"]["code"] == "bad_image"
    (row,) = HistoryStore(tmp_path / "data" / "history.sqlite3").recent(kind="monolith")
    assert not row["ok"] and row["image"] == "bad.jpg"
