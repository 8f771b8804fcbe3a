"""Authentication and roles over the whole Flask server: the pages, Dash's callbacks, its assets and /api/v1.

Off unless users are configured (WARMSERVE_DASH_USERS="alice:pw,bob:pw2" or
--auth-file; see dashboard/users.py for hashed entries and roles). The check
is the guard middleware (dashboard/web/guard.py) around ``server.wsgi_app``: it
runs before Flask, Dash or any view reads the request body, so an
unauthenticated request costs no parsing whatever it carries. Passwords are
compared in constant time (werkzeug hashes, or hmac for plain ones); a
malformed Authorization header is a 401, never a 500; /api/ paths get a JSON
401.

Roles are enforced on the server: ``require_admin()`` says whether the user of
the current request may do an admin action (clear the shared history), and
why not.
"""

from __future__ import annotations

import logging
import secrets

from dash import Dash

from ..settings import DashboardSettings
from ..users import ANONYMOUS, User, request_user
from .guard import Guard

log = logging.getLogger(__name__)


def install_auth(app: Dash, settings: DashboardSettings, request_limit: int) -> Guard:
    """Wrap the server in the guard (host, credentials, origin, body size); return it."""
    server = app.server
    if not server.secret_key:
        server.secret_key = settings.secret_key or secrets.token_urlsafe(32)
    guard = Guard(server.wsgi_app, settings, request_limit=request_limit)
    server.wsgi_app = guard
    plain = [user.name for user in settings.users if not user.hashed]
    if plain:
        log.warning("%d user(s) with plain-text passwords (viewers): %s. `python -m dashboard users add FILE NAME "
                    "--role admin|viewer` writes hashed entries with roles.", len(plain), ", ".join(plain[:5]))
    if not settings.users:
        log.info("Auth off: every visitor is %s (%s).", settings.role_without_auth,
                 "explicit setting" if settings.anonymous_role else
                 ("loopback bind" if settings.loopback else "exposed without logins"))
    return guard


def admin_refusal(settings: DashboardSettings, user: User | None = None) -> str | None:
    """None if the current request's user is an admin; otherwise a message the UI can show."""
    user = user if user is not None else request_user()
    if user is None:  # outside a request through the guard: only an unauthenticated setup has a default role
        role = "viewer" if settings.auth_enabled else settings.role_without_auth
    else:
        role = user.role
    if role == "admin":
        return None
    if user is None or user.name == ANONYMOUS:
        return ("Only admins can clear the shared history. This dashboard runs without logins on a network "
                "address, so visitors are viewers (set WARMSERVE_DASH_ANONYMOUS_ROLE=admin, or add users).")
    return f"Only admins can clear the shared history; {user.name} is a {role}."
