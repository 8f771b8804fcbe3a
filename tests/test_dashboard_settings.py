"""DashboardSettings: defaults, environment, flags over environment, and clear validation messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboard.settings import DashboardSettings, SettingsError, parse_users, read_auth_file, settings_from


def test_defaults_bind_loopback_and_put_history_under_the_data_dir(tmp_path):
    settings = DashboardSettings(data_dir=tmp_path)
    assert settings.host == "127.0.0.1" and settings.port == 8050
    assert settings.db_path == tmp_path / "history.sqlite3"
    assert settings.cache_dir.parent == tmp_path
    assert not settings.auth_enabled
    assert settings.client_settings().address == "tcp://127.0.0.1:5576"


def test_environment_is_read_and_flags_win(tmp_path):
    env = {"WARMSERVE_DASH_HOST": "0.0.0.0", "WARMSERVE_DASH_PORT": "9000", "WARMSERVE_DASH_DB": str(tmp_path / "h.db"),
           "WARMSERVE_DASH_BACKEND": "tcp://10.0.0.5:6000", "WARMSERVE_DASH_DEBUG": "yes", "WARMSERVE_DASH_THREADS": "4",
           "WARMSERVE_DASH_MAX_UPLOAD_MB": "2"}
    settings = settings_from({"port": 8123, "host": None}, env)
    assert settings.port == 8123  # flag wins
    assert settings.host == "0.0.0.0"  # flag not given: environment
    assert settings.db_path == tmp_path / "h.db"
    assert settings.backend == "tcp://10.0.0.5:6000" and settings.debug and settings.threads == 4
    assert settings.max_image_bytes == 2 * 1024 * 1024


def test_users_from_env_and_auth_file(tmp_path):
    auth_file = tmp_path / "users.txt"
    auth_file.write_text("# team\ncarol:secret,3\n\n")
    settings = settings_from({"auth_file": str(auth_file)}, {"WARMSERVE_DASH_USERS": "alice:pw,bob:pw:2"})
    assert dict(settings.users) == {"alice": "pw", "bob": "pw:2", "carol": "secret,3"}
    assert settings.auth_enabled
    assert "pw" not in repr(settings)  # passwords stay out of logs


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"port": 70000}, "port"),
        ({"threads": 0}, "threads"),
        ({"backend": "localhost:5576"}, "ZeroMQ endpoint"),
        ({"host": ""}, "host"),
        ({"max_image_bytes": 10}, "max_image_bytes"),
    ],
)
def test_bad_values_say_what_was_expected_and_received(kwargs, fragment):
    with pytest.raises(SettingsError, match=fragment) as info:
        DashboardSettings(**kwargs)
    assert "Received" in str(info.value)


def test_bad_environment_values_name_the_variable():
    with pytest.raises(SettingsError, match="WARMSERVE_DASH_PORT"):
        settings_from({}, {"WARMSERVE_DASH_PORT": "eighty"})


def test_malformed_users_are_refused():
    with pytest.raises(SettingsError, match="name:password"):
        parse_users("alice")
    with pytest.raises(SettingsError) as info:
        parse_users(":hunter2")
    assert "hunter2" not in str(info.value)
    assert parse_users(" alice:pw , ") == [("alice", "pw")]
    with pytest.raises(SettingsError, match="auth file"):
        read_auth_file(Path("/nonexistent/users.txt"))


def test_settings_are_frozen(tmp_path):
    settings = DashboardSettings(data_dir=tmp_path)
    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]
