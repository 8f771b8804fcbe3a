"""Optional HTTP basic auth (dash-auth) over the whole Flask server: the pages, Dash's callbacks and /api/v1.

Off unless users are configured (WARMSERVE_DASH_USERS="alice:pw,bob:pw2" or
--auth-file). Passwords are compared in constant time; a malformed
Authorization header is a 401, never a 500; /api/ paths get a JSON 401.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets

import flask
from dash import Dash
from dash_auth import BasicAuth

from .settings import DashboardSettings

REALM = "warmserve"


class DashboardAuth(BasicAuth):
    """dash-auth's BasicAuth, hardened: bad headers are refused and API clients get JSON."""

    def is_authorized(self) -> bool:
        header = flask.request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            username, _, password = base64.b64decode(header[6:], validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return False
        if not self._auth_func(username, password):
            return False
        try:
            flask.session["user"] = {"email": username, "groups": []}
        except RuntimeError:
            pass
        return True

    def login_request(self):
        headers = {"WWW-Authenticate": f'Basic realm="{REALM}"'}
        if flask.request.path.startswith("/api/"):
            body = {"error": {"code": "unauthorized", "message": "Log in with HTTP basic auth (a dashboard user and password)."}}
            return flask.jsonify(body), 401, headers
        return flask.Response("Login required", status=401, headers=headers)


def install_auth(app: Dash, settings: DashboardSettings) -> DashboardAuth | None:
    """Protect every route when users are configured; return None when auth is off."""
    if not settings.users:
        return None
    users = {name: password.encode("utf-8") for name, password in settings.users}

    def check(username: str, password: str) -> bool:
        expected = users.get(username)
        # compare even for unknown users, so timing does not tell which names exist
        return hmac.compare_digest(expected or b"\0", password.encode("utf-8")) and expected is not None

    return DashboardAuth(app, auth_func=check, secret_key=settings.secret_key or secrets.token_urlsafe(32))
