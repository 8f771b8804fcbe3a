"""The app factory: ``create_app(settings, client)`` builds the Dash app, its API, auth and callbacks.

Nothing runs at import time and nothing here imports TensorFlow: the model
lives in the backend process, reached through ``model_backend.client``.
"""

from __future__ import annotations

import logging

import diskcache
from dash import Dash, DiskcacheManager

from .api import install_api
from .auth import install_auth
from .callbacks import register_callbacks
from .history import HistoryStore
from .layout import build_layout, list_examples
from .settings import DashboardSettings

log = logging.getLogger(__name__)

TITLE = "warmserve"


def create_client(settings: DashboardSettings):
    """The real BackendClient for these settings (imported lazily: tests pass their own)."""
    from model_backend.client import BackendClient

    return BackendClient(settings.client_settings())


def create_app(settings: DashboardSettings, client=None, store: HistoryStore | None = None) -> Dash:
    """Build the dashboard. ``client`` is a BackendClient (or anything with classify/ping/info)."""
    client = client if client is not None else create_client(settings)
    store = store if store is not None else HistoryStore(settings.db_path)
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
    install_api(app.server, settings, client, store)  # before auth: it raises Dash's upload size limit first
    install_auth(app, settings)
    register_callbacks(app, settings, client, store)
    app.server.extensions["warmserve"] = {"settings": settings, "client": client, "store": store}
    log.debug("Dashboard built: backend %s, history %s, auth %s", settings.backend, settings.db_path,
              "on" if settings.auth_enabled else "off")
    return app
