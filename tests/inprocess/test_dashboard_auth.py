"""Roles enforced on the server (viewers cannot clear the shared history), hashed passwords and the users file.

`users add` as a real command: tests/process/test_dashboard_auth.py."""

from __future__ import annotations

import socket

import pytest
from werkzeug.security import generate_password_hash

from dashboard.app import create_app, stop_app
from dashboard.settings import DashboardSettings, SettingsError
from dashboard.users import Authenticator, User, UsersError, add_user, parse_entry
from tests.support.dash import StubClient, basic_auth, TINY_PNG

ADMIN_HASH = generate_password_hash("admin-pw", method="pbkdf2:sha256:1000")
VIEWER_HASH = generate_password_hash("viewer-pw", method="pbkdf2:sha256:1000")


@pytest.fixture
def make_app(dash_settings):
    apps = []

    def make(**overrides):
        app = create_app(dash_settings(**overrides), StubClient())
        apps.append(app)
        return app.server.test_client(), app.server.extensions["warmserve"]["store"]

    yield make
    for app in apps:
        stop_app(app)


def seed(http, headers: dict) -> None:
    for _ in range(2):
        response = http.post("/api/v1/classify", data=TINY_PNG, headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)[:300]


def press_clear(http, headers: dict, button: str = "clear-confirm"):
    """POST what the browser sends when a clear-dialog button is pressed (skipping the dialog is one request)."""
    dependency = next(d for d in http.get("/_dash-dependencies", headers=headers).get_json()
                      if "clear-modal.is_open" in d["output"])
    inputs = [{"id": i["id"], "property": i["property"], "value": 1 if i["id"] == button else 0}
              for i in dependency["inputs"]]
    outputs = [{"id": part.split(".")[0], "property": part.split(".")[1]}
               for part in dependency["output"].strip(".").split("...")]
    body = {"output": dependency["output"], "outputs": outputs, "inputs": inputs, "state": [],
            "changedPropIds": [f"{button}.n_clicks"]}
    return http.post("/_dash-update-component", json=body, headers=headers)


USERS = (User("root", ADMIN_HASH, "admin"), User("val", VIEWER_HASH, "viewer"), ("pat", "plain-pw"))


def test_a_viewer_cannot_clear_the_history_even_skipping_the_dialog(make_app):
    http, store = make_app(users=USERS)
    seed(http, basic_auth("val", "viewer-pw"))
    response = press_clear(http, basic_auth("val", "viewer-pw"))
    assert response.status_code == 200
    assert "admins only" in response.get_data(as_text=True)
    assert len(store.recent()) == 2
    # a plain-password user is a viewer too
    press_clear(http, basic_auth("pat", "plain-pw"))
    assert len(store.recent()) == 2
    # and the dialog does not even open for a viewer
    opened = press_clear(http, basic_auth("val", "viewer-pw"), button="clear-button").get_json()
    assert opened["response"]["clear-modal"]["is_open"] is False


def test_an_admin_clears_the_history(make_app):
    http, store = make_app(users=USERS)
    seed(http, basic_auth("val", "viewer-pw"))
    response = press_clear(http, basic_auth("root", "admin-pw"))
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert store.recent() == []


def test_without_auth_loopback_visitors_are_admins_and_exposed_ones_viewers(make_app):
    http, store = make_app()  # 127.0.0.1
    seed(http, {})
    press_clear(http, {})
    assert store.recent() == []

    http, store = make_app(host="0.0.0.0")
    host = {"Host": f"{socket.gethostname()}:8050"}
    seed(http, host)
    assert "admins only" in press_clear(http, host).get_data(as_text=True)
    assert len(store.recent()) == 2

    http, store = make_app(host="0.0.0.0", anonymous_role="admin")
    seed(http, host)
    press_clear(http, host)
    assert store.recent() == []


def test_users_file_entries_and_roles():
    assert parse_entry("a:admin:" + ADMIN_HASH) == User("a", ADMIN_HASH, "admin")
    assert parse_entry("b:" + VIEWER_HASH) == User("b", VIEWER_HASH, "viewer")
    assert parse_entry("c:admin:not-a-hash") == User("c", "admin:not-a-hash", "viewer")  # a plain password
    with pytest.raises(UsersError):
        parse_entry("nocolon")
    with pytest.raises(SettingsError, match="role"):
        DashboardSettings(users=(("x", "pw", "root"),))


def test_add_user_refuses_bad_names(tmp_path):
    with pytest.raises(UsersError):
        add_user(tmp_path / "u.txt", "bad:name", "pw", "admin")
    with pytest.raises(UsersError):
        add_user(tmp_path / "u.txt", "ok", "pw", "superuser")
    with pytest.raises(UsersError):
        add_user(tmp_path / "u.txt", "ok", "", "admin")


def test_authenticator_remembers_only_right_passwords():
    checker = Authenticator([User("a", ADMIN_HASH, "admin"), ("p", "plain")])
    assert checker.verify("a", "admin-pw").role == "admin"
    assert checker.verify("a", "admin-pw").role == "admin"  # from memory
    assert checker.verify("a", "admin-pw ") is None
    assert checker.verify("nobody", "admin-pw") is None
    assert checker.verify("p", "plain").role == "viewer"
    assert checker.verify("p", "plai") is None
