"""Running the monolith from the dashboard: output parsing, and the model and name taken from the server only (never
from what the browser sends). Real runs and the command line are in tests/process/test_dashboard_monolith.py."""

from __future__ import annotations

import json

import diskcache
import pytest
from dash import Dash, DiskcacheManager

from dashboard.history.store import HistoryStore
from dashboard.monolith import controller, ids
from dashboard.monolith import runner as monolith_runner
from dashboard.monolith.callbacks import register_callbacks
from dashboard.monolith.runner import monolith_command, parse_monolith_output
from dashboard.page import build_layout
from dashboard.settings import SettingsError, settings_from
from tests.support.dash import HOSTILE

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


def test_the_monolith_model_setting_defaults_to_the_backends_and_refuses_options():
    assert settings_from({}, {}).monolith_model == "efficientnet-lite0"
    assert settings_from({}, {"WARMSERVE_MODEL": "resnet50"}).monolith_model == "resnet50"
    both = {"WARMSERVE_MODEL": "resnet50", "WARMSERVE_DASH_MONOLITH_MODEL": "/models/mine.keras"}
    assert settings_from({}, both).monolith_model == "/models/mine.keras"
    for bad in ("--weights=/etc/passwd", "", "a\nb"):
        with pytest.raises(SettingsError, match="monolith_model"):
            settings_from({}, {"WARMSERVE_DASH_MONOLITH_MODEL": bad} if bad else {"WARMSERVE_MODEL": " "})
