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
           "WARMSERVE_DASH_MAX_UPLOAD_MB": "2",
           "WARMSERVE_DASH_INSECURE": "1"}  # a non-loopback backend without CURVE keys needs it (model_backend/security.py)
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
    assert {user.name: user.secret for user in settings.users} == {"alice": "pw", "bob": "pw:2", "carol": "secret,3"}
    assert {user.role for user in settings.users} == {"viewer"}  # plain passwords are viewers
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
    assert parse_users(" alice:pw , ") == [("alice", "pw", "viewer")]
    with pytest.raises(SettingsError, match="auth file"):
        read_auth_file(Path("/nonexistent/users.txt"))


def test_settings_are_frozen(tmp_path):
    settings = DashboardSettings(data_dir=tmp_path)
    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]


def test_door_settings_from_environment_and_flags(tmp_path):
    env = {"WARMSERVE_DASH_ALLOWED_HOSTS": "dash.example, 10.0.0.5", "WARMSERVE_DASH_ANONYMOUS_ROLE": "viewer",
           "WARMSERVE_DASH_CALLBACK_MAX_MB": "3", "WARMSERVE_DASH_CONNECTION_LIMIT": "400",
           "WARMSERVE_DASH_CHANNEL_TIMEOUT_S": "15", "WARMSERVE_DASH_CLEANUP_INTERVAL_S": "2"}
    settings = settings_from({"data_dir": tmp_path, "connection_limit": 500}, env)
    assert settings.allowed_hosts == ("dash.example", "10.0.0.5")
    assert settings.role_without_auth == "viewer"
    assert settings.callback_body_limit == 3 * 1024 * 1024
    assert (settings.connection_limit, settings.channel_timeout_s, settings.cleanup_interval_s) == (500, 15, 2)
    assert settings_from({"allowed_hosts": "*"}, {}).allowed_hosts == ("*",)


def test_without_auth_loopback_is_admin_and_exposed_is_viewer(tmp_path):
    assert DashboardSettings(data_dir=tmp_path).role_without_auth == "admin"
    assert DashboardSettings(data_dir=tmp_path, host="localhost").role_without_auth == "admin"
    assert DashboardSettings(data_dir=tmp_path, host="0.0.0.0").role_without_auth == "viewer"
    assert DashboardSettings(data_dir=tmp_path, host="0.0.0.0", anonymous_role="admin").role_without_auth == "admin"
    with pytest.raises(SettingsError, match="anonymous_role"):
        DashboardSettings(data_dir=tmp_path, anonymous_role="root")
    with pytest.raises(SettingsError, match="connection_limit"):
        DashboardSettings(data_dir=tmp_path, connection_limit=0)


def test_every_environment_variable_name_is_read(tmp_path):
    """The WARMSERVE_DASH_* names of the old hand-written table all still reach their field (one mechanism now)."""
    users = tmp_path / "users.txt"
    users.write_text("carol:pw\n")
    env = {
        "WARMSERVE_DASH_HOST": "0.0.0.0", "WARMSERVE_DASH_PORT": "9001", "WARMSERVE_DASH_BACKEND": "tcp://127.0.0.1:6001",
        "WARMSERVE_DASH_DATA_DIR": str(tmp_path), "WARMSERVE_DASH_DB": str(tmp_path / "h.db"), "WARMSERVE_DASH_THREADS": "3",
        "WARMSERVE_DASH_DEBUG": "1", "WARMSERVE_DASH_MAX_UPLOAD_MB": "1.5", "WARMSERVE_DASH_MAX_FILES": "7",
        "WARMSERVE_DASH_TIMEOUT_MS": "1234", "WARMSERVE_DASH_RETRIES": "2", "WARMSERVE_DASH_STATUS_INTERVAL_MS": "4000",
        "WARMSERVE_DASH_MONOLITH_TIMEOUT_S": "60.5", "WARMSERVE_DASH_MONOLITH_MODEL": "resnet50",
        "WARMSERVE_DASH_MONOLITH_CONCURRENCY": "2", "WARMSERVE_DASH_MONOLITH_QUEUE": "9",
        "WARMSERVE_DASH_HISTORY_MAX_ROWS": "500", "WARMSERVE_DASH_HISTORY_MAX_AGE_DAYS": "7.5",
        "WARMSERVE_DASH_USERS": "alice:pw", "WARMSERVE_DASH_AUTH_FILE": str(users), "WARMSERVE_DASH_SECRET_KEY": "k",
        "WARMSERVE_DASH_KEYS_DIR": "", "WARMSERVE_DASH_INSECURE": "no", "WARMSERVE_DASH_ANONYMOUS_ROLE": "viewer",
        "WARMSERVE_DASH_ALLOWED_HOSTS": "a.example", "WARMSERVE_DASH_CALLBACK_MAX_MB": "2",
        "WARMSERVE_DASH_CONNECTION_LIMIT": "50", "WARMSERVE_DASH_CHANNEL_TIMEOUT_S": "9", "WARMSERVE_DASH_CLEANUP_INTERVAL_S": "3",
    }
    s = settings_from({}, env)
    assert (s.host, s.port, s.backend, s.data_dir, s.db_path, s.threads, s.debug) == (
        "0.0.0.0", 9001, "tcp://127.0.0.1:6001", tmp_path, tmp_path / "h.db", 3, True)
    assert (s.max_image_bytes, s.max_files, s.timeout_ms, s.retries, s.status_interval_ms) == (int(1.5 * 1024 * 1024), 7, 1234, 2, 4000)
    assert (s.monolith_timeout_s, s.monolith_model, s.monolith_concurrency, s.monolith_queue) == (60.5, "resnet50", 2, 9)
    assert (s.history_max_rows, s.history_max_age_days) == (500, 7.5)
    assert sorted(user.name for user in s.users) == ["alice", "carol"] and s.secret_key == "k"
    assert (s.keys_dir, s.insecure, s.anonymous_role, s.allowed_hosts) == (None, False, "viewer", ("a.example",))
    assert (s.callback_max_bytes, s.connection_limit, s.channel_timeout_s, s.cleanup_interval_s) == (2 * 1024 * 1024, 50, 9, 3)
    with pytest.raises(SettingsError, match="WARMSERVE_DASH_MAX_UPLOAD_MB"):
        settings_from({}, {"WARMSERVE_DASH_MAX_UPLOAD_MB": "big"})
