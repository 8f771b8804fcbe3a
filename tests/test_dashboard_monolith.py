"""Running the monolith from the dashboard: output parsing, time limit, the model and name taken from the server
only (never from what the browser sends), and one real run recorded in the history."""

from __future__ import annotations

import json
import subprocess
import sys

import diskcache
import pytest
from dash import Dash, DiskcacheManager

from dashboard.classify.uploads import Upload
from dashboard.common.kept_uploads import keep_upload
from dashboard.history.records import MONOLITH, service_record
from dashboard.history.store import HistoryStore
from dashboard.monolith import controller, ids
from dashboard.monolith import runner as monolith_runner
from dashboard.monolith.callbacks import register_callbacks
from dashboard.monolith.runner import monolith_command, parse_monolith_output, run_monolith_on_file
from dashboard.page import build_layout
from dashboard.settings import SettingsError, settings_from
from tests.conftest import ROOT

RESULT = {"model": "efficientnet-lite0", "image": "x", "predictions": [{"index": 285, "label": "Egyptian cat", "p": 0.8}],
          "timings_ms": {"import": 1, "model_load": 2, "preprocess": 3, "inference": 4, "total": 10}}


def test_command_runs_the_module_with_json_and_the_backend_model(tmp_path):
    command = monolith_command(tmp_path / "cat.png", "resnet50")
    assert command[1:4] == ["-m", "model_backend.monolith", str(tmp_path / "cat.png")]
    assert command[-3:] == ["--json", "--model", "resnet50"]
    assert "--model" not in monolith_command(tmp_path / "cat.png", None)


def test_parse_output_success_error_and_garbage():
    noisy = b"some warning\n" + json.dumps(RESULT).encode() + b"\n"
    assert parse_monolith_output(noisy, b"", 0) == RESULT
    error = {"error": {"code": "bad_image", "message": "not an image"}}
    assert parse_monolith_output(json.dumps(error).encode(), b"", 2) == error
    crashed = parse_monolith_output(b"", b"Traceback...\nImportError: no module\n", 1)
    assert crashed["error"]["code"] == "internal" and "ImportError" in crashed["error"]["message"]


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
    assert row["top1_index"] in range(281, 286) and row["source"] == "ui" and row["sha256"] == upload.sha256
    assert row["import_ms"] > 0 and row["model_load_ms"] > 0 and row["latency_ms"] >= row["backend_total_ms"] * 0.9
    assert "import TensorFlow" in text and "chelsea.png" in text
    assert progress  # elapsed seconds were reported while it ran


#: what a browser could forge: paths (a file-existence oracle), traversal, URLs (a download), options, odd types
HOSTILE = ["/etc/passwd.keras", "../x", "../../etc/passwd", "https://evil.example/model.keras", "--weights=/etc/passwd",
           "resnet50", "a" * 64 + "/../x", "A" * 64, "g" * 64, ["a"] * 64, {"model": "/etc/passwd.keras"}, 12345, None, ""]
STANDIN_RESULT = ("import json; print(json.dumps({'model': 'stand-in', 'predictions': [{'index': 1, 'label': 'one', 'p': 1.0}],"
                  " 'timings_ms': {'import': 1, 'model_load': 1, 'preprocess': 1, 'inference': 1, 'total': 4}}))")


def test_the_browser_sends_only_the_images_sha256_to_the_monolith_callback(dash_settings):
    settings = dash_settings()
    app = Dash(__name__, background_callback_manager=DiskcacheManager(diskcache.Cache(str(settings.cache_dir))))
    app.layout = build_layout(settings, [])
    register_callbacks(app, settings)
    [monolith] = [cb for key, cb in app.callback_map.items() if f"{ids.MONOLITH_RESULT}.children" in key]
    # No dcc.Store, no dropdown options: the model and the name cannot come from the browser.
    assert monolith["inputs"] == [{"id": ids.MONOLITH_BUTTON, "property": "n_clicks"}]
    assert monolith["state"] == [{"id": ids.MONOLITH_IMAGE, "property": "value"}]


@pytest.mark.parametrize("value", HOSTILE, ids=repr)
def test_a_forged_image_value_runs_nothing(dash_settings, monkeypatch, value):
    settings = dash_settings()
    monkeypatch.setattr(monolith_runner.subprocess, "Popen", lambda *a, **k: pytest.fail(f"started {a}"))
    panel = controller.run_monolith_view(settings, HistoryStore(settings.db_path), value)
    assert "Classify an image first" in json.dumps(panel.to_plotly_json(), default=lambda o: o.to_plotly_json())


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


def test_the_monolith_model_setting_defaults_to_the_backends_and_refuses_options():
    assert settings_from({}, {}).monolith_model == "efficientnet-lite0"
    assert settings_from({}, {"WARMSERVE_MODEL": "resnet50"}).monolith_model == "resnet50"
    both = {"WARMSERVE_MODEL": "resnet50", "WARMSERVE_DASH_MONOLITH_MODEL": "/models/mine.keras"}
    assert settings_from({}, both).monolith_model == "/models/mine.keras"
    for bad in ("--weights=/etc/passwd", "", "a\nb"):
        with pytest.raises(SettingsError, match="monolith_model"):
            settings_from({}, {"WARMSERVE_DASH_MONOLITH_MODEL": bad} if bad else {"WARMSERVE_MODEL": " "})


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


def test_the_monolith_command_records_a_bad_image_as_an_error(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    completed = run_command(str(bad), "--data-dir", str(tmp_path / "data"))
    assert completed.returncode == 2
    assert json.loads(completed.stdout)["error"]["code"] == "bad_image"
    (row,) = HistoryStore(tmp_path / "data" / "history.sqlite3").recent(kind="monolith")
    assert not row["ok"] and row["image"] == "bad.jpg"
