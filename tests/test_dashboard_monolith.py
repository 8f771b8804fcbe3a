"""Running the monolith from the dashboard: output parsing, time limit, and one real run recorded in the history."""

from __future__ import annotations

import json

import pytest

from dashboard import views
from dashboard.classify import Upload, keep_upload
from dashboard.history import MONOLITH, HistoryStore
from dashboard.monolith_runner import monolith_command, parse_monolith_output, run_monolith_on_file

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
    panel = views.run_monolith_view(settings, store, upload.sha256, "chelsea.png", "efficientnet-lite0", progress.append)
    text = json.dumps(panel.to_plotly_json(), default=lambda o: o.to_plotly_json())
    [row] = store.recent(kind=MONOLITH)
    assert row["ok"] == 1, row["error_message"]
    assert row["top1_index"] in range(281, 286) and row["source"] == "ui" and row["sha256"] == upload.sha256
    assert row["import_ms"] > 0 and row["model_load_ms"] > 0 and row["latency_ms"] >= row["backend_total_ms"] * 0.9
    assert "import TensorFlow" in text and "chelsea.png" in text
    assert progress  # elapsed seconds were reported while it ran
