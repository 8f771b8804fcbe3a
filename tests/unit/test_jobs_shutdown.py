"""The jobs worker's bounded stop and its settings, without processes: a monolith run still going when the grace
period ends is stopped, its user told so, and nothing recorded; the flags and variables reach the settings.
(The real worker, SIGTERM and its timing: tests/process/test_jobs_worker_ops.py.)"""

from __future__ import annotations

import hashlib
import json

import pytest

import dashboard.__main__ as dashboard_cli
from dashboard.history.store import HistoryStore
from dashboard.jobs import shutdown
from dashboard.monolith import controller
from dashboard.monolith import runner as monolith_runner
from dashboard.settings import SettingsError, settings_from

RESULT = {"model": "stand-in", "predictions": [{"index": 1, "label": "one", "p": 1.0}],
          "timings_ms": {"import": 1, "model_load": 1, "preprocess": 1, "inference": 1, "total": 4}}


def kept(settings, data: bytes = b"an image") -> str:
    sha256 = hashlib.sha256(data).hexdigest()
    settings.uploads_dir.mkdir(parents=True, exist_ok=True)
    (settings.uploads_dir / f"{sha256}.img").write_bytes(data)
    return sha256


@pytest.fixture
def armed(monkeypatch, tmp_path):
    """This process as a jobs worker's pool process: the flag file exists once the grace period is over."""
    monkeypatch.setattr(shutdown, "_flag", tmp_path / "stop-monolith-runs")


def fake_run(ticks: list, stop_at: float | None):
    """The runner's inner loop: a progress tick every 0.5 s of a 1.5 s run; the grace period ends at ``stop_at``."""
    def run(image_path, model, timeout_s, on_progress, pass_fds):
        for elapsed in (0.5, 1.0, 1.5):
            on_progress(elapsed)
            ticks.append(elapsed)
            if elapsed == stop_at:
                shutdown.stop_runs_now()
        return dict(RESULT), 1500.0
    return run


def test_a_run_still_going_when_the_grace_period_ends_is_stopped_told_and_not_recorded(dash_settings, monkeypatch, armed):
    settings = dash_settings()
    ticks, progress = [], []
    monkeypatch.setattr(monolith_runner, "_run", fake_run(ticks, stop_at=0.5))
    panel = controller.run_monolith_job(settings, kept(settings), progress.append)
    assert ticks == [0.5]  # the next tick stopped it (the real runner then kills the monolith process)
    shown = json.dumps(panel.to_plotly_json(), default=str)
    assert shutdown.STOPPED_MESSAGE in shown and "stand-in" not in shown
    assert progress and all("Running the monolith" in text for text in progress)
    assert HistoryStore(settings.db_path).counts()["monolith"] == {"ok": 0, "errors": 0}  # nothing recorded
    assert controller.monolith_queue(settings).running() == 0  # and its slot is free


def test_a_run_that_ends_before_the_grace_period_ends_is_answered_and_recorded(dash_settings, monkeypatch, armed):
    settings = dash_settings()
    ticks: list = []
    monkeypatch.setattr(monolith_runner, "_run", fake_run(ticks, stop_at=None))
    panel = controller.run_monolith_job(settings, kept(settings), lambda _text: None)
    assert ticks == [0.5, 1.0, 1.5]
    assert shutdown.STOPPED_MESSAGE not in json.dumps(panel.to_plotly_json(), default=str)
    assert HistoryStore(settings.db_path).counts()["monolith"]["ok"] == 1


def test_outside_a_jobs_worker_nothing_stops_a_run(dash_settings, monkeypatch):
    monkeypatch.setattr(shutdown, "_flag", None)  # a DiskcacheManager job process: never armed
    shutdown.stop_runs_now()
    assert not shutdown.stopping()
    reports: list[str] = []
    shutdown.stop_with_the_worker(reports.append)("still running")
    assert reports == ["still running"]


def jobs_worker_settings(*argv: str, environ: dict[str, str] | None = None):
    args = dashboard_cli.build_parser().parse_args(["jobs-worker", *argv])
    flags = {k: v for k, v in vars(args).items() if k not in ("command", "log_level", "image", "concurrency")}
    return settings_from(flags, environ or {})


def test_the_jobs_workers_flags_and_variables_reach_its_settings():
    defaults = jobs_worker_settings()
    assert (defaults.jobs_metrics_port, defaults.jobs_metrics_host, defaults.jobs_stop_grace_s) == (None, "127.0.0.1", 20.0)
    given = jobs_worker_settings("--metrics-port", "9106", "--metrics-host", "0.0.0.0", "--stop-grace-s", "5")
    assert (given.jobs_metrics_port, given.jobs_metrics_host, given.jobs_stop_grace_s) == (9106, "0.0.0.0", 5.0)
    from_env = jobs_worker_settings(environ={"WARMSERVE_DASH_JOBS_METRICS_PORT": "9107",
                                             "WARMSERVE_DASH_JOBS_STOP_GRACE_S": "45"})
    assert (from_env.jobs_metrics_port, from_env.jobs_stop_grace_s) == (9107, 45.0)
    with pytest.raises(SettingsError, match="jobs_stop_grace_s"):
        jobs_worker_settings("--stop-grace-s", "-1")
    with pytest.raises(SettingsError, match="jobs_metrics_port"):
        jobs_worker_settings("--metrics-port", "70000")
