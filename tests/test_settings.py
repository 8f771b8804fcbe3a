"""Settings are frozen, validated at construction, and read from the environment."""

import dataclasses

import pytest

from model_backend import cli
from model_backend.settings import ClientSettings, ModelSettings, ServerSettings, SettingsError


def test_settings_are_frozen():
    settings = ServerSettings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.max_batch = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"max_batch": 0}, "max_batch"),
        ({"max_wait_ms": -1}, "max_wait_ms"),
        ({"queue_size": 0}, "queue_size"),
        ({"bind": "localhost:5576"}, "ZeroMQ endpoint"),
        ({"bind": "udp://127.0.0.1:1"}, "tcp://"),
        ({"decode_threads": 0}, "decode_threads"),
        ({"log_level": "LOUD"}, "log_level"),
    ],
)
def test_bad_server_settings_say_how_to_fix_them(kwargs, fragment):
    with pytest.raises(SettingsError, match=fragment):
        ServerSettings(**kwargs)


def test_bad_model_and_client_settings():
    with pytest.raises(SettingsError, match="preprocess"):
        ModelSettings(preprocess="magic")
    with pytest.raises(SettingsError, match="timeout_ms"):
        ClientSettings(timeout_ms=0)


def test_flags_win_over_environment_which_wins_over_defaults(monkeypatch):
    monkeypatch.setenv("WARMSERVE_MAX_BATCH", "8")
    monkeypatch.setenv("WARMSERVE_MAX_WAIT_MS", "3.5")
    monkeypatch.setenv("WARMSERVE_MODEL", "resnet50")
    args = cli.build_parser().parse_args(["serve", "--max-batch", "4"])
    settings = cli.server_settings_from(args)
    assert settings.max_batch == 4
    assert settings.max_wait_ms == 3.5
    assert settings.model.name == "resnet50"
    assert settings.queue_size == ServerSettings().queue_size


def test_bad_environment_value_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("WARMSERVE_QUEUE_SIZE", "lots")
    args = cli.build_parser().parse_args(["serve"])
    with pytest.raises(SettingsError, match="WARMSERVE_QUEUE_SIZE"):
        cli.server_settings_from(args)


def test_cli_reports_bad_settings_without_a_traceback(capsys):
    assert cli.main(["serve", "--max-batch", "0"]) == 2
    assert "max_batch" in capsys.readouterr().err
