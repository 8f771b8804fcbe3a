"""The app factory: ``create_app(settings, client)`` builds the Dash app, its API, auth and callbacks.

Nothing runs at import time and nothing here imports TensorFlow: the model
lives in the backend process, reached through ``model_backend.client``.
``create_app`` starts one status poller thread (daemon; stopped by
``stop_app(app)``, or when the app is garbage-collected) whose state the
health endpoint and the status bar read.
"""

from __future__ import annotations

import logging
import weakref

import diskcache
from dash import Dash, DiskcacheManager

from .api.routes import install_api, request_limit
from .classify import callbacks as classify_callbacks
from .classify.layout import list_examples
from .history import callbacks as history_callbacks
from .history.store import HistoryStore
from .monolith import callbacks as monolith_callbacks
from .page import build_layout
from .settings import DashboardSettings
from .status import callbacks as status_callbacks
from .status.poller import StatusPoller
from .web.auth import install_auth
from .web.callback_body import install_callback_body_check

log = logging.getLogger(__name__)

TITLE = "warmserve"


def create_client(settings: DashboardSettings):
    """The real BackendClient for these settings (imported lazily: tests pass their own)."""
    from model_backend.client import BackendClient

    return BackendClient(settings.client_settings())


def create_app(settings: DashboardSettings, client=None, store: HistoryStore | None = None) -> Dash:
    """Build the dashboard. ``client`` is a BackendClient (or anything with classify/ping/info)."""
    client = client if client is not None else create_client(settings)
    store = store if store is not None else HistoryStore.from_settings(settings)
    settings.cache_dir.mkdir(parents=True, exist_ok=True)
    manager = DiskcacheManager(diskcache.Cache(str(settings.cache_dir)), expire=3600)
    app = Dash(
        __name__,
        title=TITLE,
        update_title=None,
        assets_folder=str(settings.assets_dir),
        background_callback_manager=manager,
        meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}],
    )
    app.layout = build_layout(settings, list_examples(settings.assets_dir))
    poller = StatusPoller(client, settings.backend, settings.status_interval_ms / 1000, stale_after_s(settings))
    app.server.extensions["warmserve"] = {"settings": settings, "client": client, "store": store, "poller": poller}
    install_api(app.server, settings, client, store, poller)
    install_callback_body_check(app.server, app.callback_map)
    guard = install_auth(app, settings, request_limit(settings))
    app.server.extensions["warmserve"]["guard"] = guard
    register_callbacks(app, settings, client, store, poller)
    poller.start()
    weakref.finalize(app, poller.stop, 0)
    log.debug("Dashboard built: backend %s, history %s, auth %s", settings.backend, settings.db_path,
              "on" if settings.auth_enabled else "off")
    return app


def register_callbacks(app: Dash, settings: DashboardSettings, client, store: HistoryStore, poller: StatusPoller) -> None:
    """Every feature's callbacks (a new feature adds one line here and its section in page.py)."""
    classify_callbacks.register_callbacks(app, settings, client, store)
    monolith_callbacks.register_callbacks(app, settings)
    history_callbacks.register_callbacks(app, settings, store)
    status_callbacks.register_callbacks(app, poller)


def stale_after_s(settings: DashboardSettings) -> float:
    """How old the status may get before health calls it stale: two intervals plus one slowest check."""
    client = settings.client_settings()
    slowest_check_ms = client.connect_timeout_ms + client.ping_timeout_ms + client.timeout_ms * (client.retries + 1)
    return (2 * settings.status_interval_ms + slowest_check_ms) / 1000 + 1.0


def stop_app(app: Dash) -> None:
    """Stop the app's background thread (the status poller)."""
    poller = app.server.extensions.get("warmserve", {}).get("poller")
    if poller is not None:
        poller.stop()
