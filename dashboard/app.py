"""The app factory: ``create_app(settings, client)`` builds the Dash app, its API, auth and callbacks.

Nothing runs at import time and nothing here imports TensorFlow: the model
lives in the backend process, reached through ``model_backend.client``.
``create_app`` starts one status poller thread (daemon; stopped by
``stop_app(app)``, or when the app is garbage-collected) whose state the
health endpoint and the status bar read, and the history store's one writer
thread (``history/writer.py``), which ``stop_app`` drains before it returns.
"""

from __future__ import annotations

import atexit
import logging
import weakref

from dash import Dash

from .api.fast_route import install_fast_route
from .api.routes import install_api, request_limit
from .api_panel import callbacks as api_panel_callbacks
from .classify import callbacks as classify_callbacks
from .classify.layout import list_examples
from .classify.thumbnails import install_thumbnail_route
from .common.kept_uploads import kept_uploads_for
from .history import callbacks as history_callbacks
from .history.engine import printable_location
from .history.store import HistoryStore
from .jobs.manager import background_manager
from .metrics.registry import flush_classify_metrics
from .monolith import callbacks as monolith_callbacks
from .page import build_layout
from .settings import DashboardSettings
from .status import callbacks as status_callbacks
from .status.poller import StatusPoller
from .web.auth import install_auth
from .web.callback_body import install_callback_body_check
from .web.compression import install_compression

log = logging.getLogger(__name__)

TITLE = "warmserve"
#: the page's language (<html lang>): every text on it is English
LANGUAGE = "en"
#: how long stop_app waits for the history writer to write what is queued (part of SIGTERM's 2 s)
HISTORY_DRAIN_S = 0.8


def create_client(settings: DashboardSettings):
    """The real BackendClient for these settings (imported lazily: tests pass their own)."""
    from model_backend.client import BackendClient

    return BackendClient(settings.client_settings())


def create_app(settings: DashboardSettings, client=None, store: HistoryStore | None = None) -> Dash:
    """Build the dashboard. ``client`` is a BackendClient (or anything with classify/ping/info)."""
    client = client if client is not None else create_client(settings)
    store = store if store is not None else HistoryStore.from_settings(settings)
    store.start_writer(settings.history_queue)
    manager = background_manager(settings)  # diskcache on this host, or Celery on settings.redis
    app = Dash(
        __name__,
        title=TITLE,
        update_title=None,
        assets_folder=str(settings.assets_dir),
        background_callback_manager=manager,
        meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}],
    )
    app.index_string = app.index_string.replace("<html>", f'<html lang="{LANGUAGE}">', 1)  # for screen readers
    app.layout = build_layout(settings, list_examples(settings.assets_dir))
    poller = StatusPoller(client, settings.backend, settings.status_interval_ms / 1000, stale_after_s(settings))
    app.server.extensions["warmserve"] = {"settings": settings, "client": client, "store": store, "poller": poller,
                                          "jobs": manager}
    install_api(app.server, settings, client, store, poller)
    kept = kept_uploads_for(settings.uploads_dir, store)  # files in data_dir, or the PostgreSQL history's table
    app.server.extensions["warmserve"]["kept_uploads"] = kept
    install_thumbnail_route(app.server, kept)  # result thumbnails, from the kept uploads
    install_compression(app.server)
    install_callback_body_check(app.server, app.callback_map)
    install_fast_route(app.server, settings, client, store)  # POST /api/v1/classify without Flask (inside the guard)
    guard = install_auth(app, settings, request_limit(settings))
    app.server.extensions["warmserve"]["guard"] = guard
    register_callbacks(app, settings, client, store, poller)
    poller.start()
    weakref.finalize(app, poller.stop, 0)
    weakref.finalize(app, store.close, 0)  # the writer thread ends once it has written what is queued
    # Queued history rows are written before a normal interpreter exit too (serve drains them in stop_app).
    atexit.register(_drain_at_exit, weakref.ref(store))
    log.debug("Dashboard built: backend %s, history %s, auth %s", settings.backend, printable_location(settings.db_path),
              "on" if settings.auth_enabled else "off")
    return app


def register_callbacks(app: Dash, settings: DashboardSettings, client, store: HistoryStore, poller: StatusPoller) -> None:
    """Every feature's callbacks (a new feature adds one line here and its section in page.py)."""
    classify_callbacks.register_callbacks(app, settings, client, store)
    monolith_callbacks.register_callbacks(app, settings)
    history_callbacks.register_callbacks(app, settings, store, poller)
    status_callbacks.register_callbacks(app, poller)
    api_panel_callbacks.register_callbacks(app, settings.auth_enabled)


def stale_after_s(settings: DashboardSettings) -> float:
    """How old the status may get before health calls it stale: two intervals plus one slowest check."""
    client = settings.client_settings()
    slowest_check_ms = client.connect_timeout_ms + client.ping_timeout_ms + client.timeout_ms * (client.retries + 1)
    return (2 * settings.status_interval_ms + slowest_check_ms) / 1000 + 1.0


def stop_app(app: Dash, drain_s: float = HISTORY_DRAIN_S) -> None:
    """Stop the app's background threads: the status poller, then the history writer (draining its queue, bounded);
    write the classify metrics gathered so far."""
    parts = app.server.extensions.get("warmserve", {})
    if parts.get("poller") is not None:
        parts["poller"].stop()
    store = parts.get("store")
    if store is not None:
        pending = store.writer.pending if store.writer is not None else 0
        if store.close(drain_s):
            log.debug("History writer drained (%d queued rows written)", pending)
        else:
            log.error("History writer did not drain within %.1f s; %d rows not written", drain_s, store.writer.pending)
    flush_classify_metrics()


def _drain_at_exit(store_ref: weakref.ref) -> None:
    store = store_ref()
    if store is not None:
        store.close(HISTORY_DRAIN_S)
