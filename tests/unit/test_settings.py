"""Settings are frozen, validated at construction, and read from flags, then the environment, then defaults (one mechanism)."""

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from model_backend import cli
from model_backend.settings import (BrokerSettings, ClientSettings, ModelSettings, ServerSettings, SettingsError, build_settings,
                                    check_range, megabytes, model_settings_from, setting)


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


# -- the one mechanism: flags -> environment -> defaults, by the fields' real types -----------

@dataclass(frozen=True)
class Knobs:
    env_prefix: ClassVar[str] = "TEST_"

    count: int = 1
    ratio: float = 0.5
    loud: bool = False
    where: Path | None = None
    names: tuple[str, ...] = ()
    label: str = setting("x", env=("TEST_LABEL", "TEST_FALLBACK_LABEL"), flag="tag")
    size: int = setting(1024, flag="size_mb", from_flag=megabytes)
    hidden: int = setting(7, env=None, flag=None)


def test_build_settings_parses_each_variable_by_its_fields_real_type():
    env = {"TEST_COUNT": "3", "TEST_RATIO": "0.25", "TEST_LOUD": "yes", "TEST_WHERE": "~/x", "TEST_NAMES": "a, b,,c",
           "TEST_FALLBACK_LABEL": "fallback", "TEST_HIDDEN": "9", "TEST_SIZE": "2048"}
    knobs = build_settings(Knobs, {}, env)
    assert (knobs.count, knobs.ratio, knobs.loud, knobs.names) == (3, 0.25, True, ("a", "b", "c"))
    assert knobs.where == Path("~/x").expanduser()
    assert knobs.label == "fallback"  # the second name, when the first is unset
    assert knobs.size == 2048 and knobs.hidden == 7  # env=None: never read from the environment


def test_build_settings_flags_win_and_empty_variables_count_as_unset():
    env = {"TEST_COUNT": "3", "TEST_LABEL": "", "TEST_FALLBACK_LABEL": "fb", "TEST_LOUD": ""}
    knobs = build_settings(Knobs, {"count": 5, "tag": "flag", "size_mb": 1.5, "ratio": None}, env)
    assert (knobs.count, knobs.label, knobs.size, knobs.ratio, knobs.loud) == (5, "flag", int(1.5 * 1024 * 1024), 0.5, False)
    assert build_settings(Knobs, {"size": 10}, {}).size == 10  # a flag keyed by the field is already in its unit
    with pytest.raises(SettingsError, match="TEST_COUNT"):
        build_settings(Knobs, {}, {"TEST_COUNT": "many"})
    with pytest.raises(SettingsError, match="TEST_LOUD"):
        build_settings(Knobs, {}, {"TEST_LOUD": "perhaps"})


def test_one_range_checker_says_what_was_expected():
    check_range("n", 3, 1, 5)
    check_range("n", 2.5, 1, 5)
    with pytest.raises(SettingsError, match="Expected n between 1 and 5. Received: n=9"):
        check_range("n", 9, 1, 5)
    with pytest.raises(SettingsError, match="integer from 1 to 5"):
        check_range("n", 2.5, 1, 5, integer=True)
    with pytest.raises(SettingsError):
        check_range("n", True, 0, 5)


def test_model_settings_come_from_the_shared_model_flags(monkeypatch, tmp_path):
    monkeypatch.setenv("WARMSERVE_MODEL", "resnet50")
    monkeypatch.setenv("WARMSERVE_CACHE_DIR", str(tmp_path))
    assert model_settings_from(None).name == "resnet50"
    args = cli.build_parser().parse_args(["serve", "--model", "efficientnet-lite0", "--preprocess", "torch"])
    settings = model_settings_from(args)
    assert (settings.name, settings.preprocess, settings.cache_dir) == ("efficientnet-lite0", "torch", tmp_path)


def test_broker_is_a_subcommand_with_its_flags_over_its_environment(monkeypatch):
    monkeypatch.setenv("WARMSERVE_BROKER_QUEUE_SIZE", "64")
    monkeypatch.setenv("WARMSERVE_BROKER_LIVENESS", "5")
    monkeypatch.setenv("WARMSERVE_QUEUE_SIZE", "7")  # the backend's: not the broker's
    args = cli.build_parser().parse_args(["broker", "--frontend", "tcp://127.0.0.1:6000", "--liveness", "4", "--max-frame-mb", "2"])
    settings = build_settings(BrokerSettings, args)
    assert settings.frontend == "tcp://127.0.0.1:6000"
    assert (settings.queue_size, settings.liveness, settings.max_frame_bytes) == (64, 4, 2 * 1024 * 1024)
    assert settings.backend == BrokerSettings().backend
    assert cli.main(["broker", "--liveness", "1"]) == 2  # a bad value: a message, no traceback
