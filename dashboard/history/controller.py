"""What the history callbacks do, as plain functions of (settings, store, inputs): tests call these directly."""

from __future__ import annotations

import time

from dash import no_update

from ..settings import DashboardSettings
from ..web.auth import admin_refusal
from . import ids
from .figures import history_figure
from .layout import history_table, summary_view
from .records import MONOLITH, SERVICE
from .store import HistoryStore

RECENT_ROWS = 12


def history_view(store: HistoryStore) -> tuple[object, object, object, list]:
    """(latency figure, summary cards, recent-requests table, signature)."""
    summary = store.summary()
    figure = history_figure(store.latencies(SERVICE), store.latencies(MONOLITH), summary)
    return figure, summary_view(summary), history_table(store.recent(RECENT_ROWS)), store.signature()


def history_csv(store: HistoryStore) -> dict:
    """What dcc.Download needs to save the history as a CSV file."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return {"content": store.to_csv(), "filename": f"warmserve-history-{stamp}.csv", "type": "text/csv"}


def clear_history(settings: DashboardSettings, store: HistoryStore, trigger: object) -> tuple:
    """(modal open, cleared count, button text, button disabled, button title) after a click on ``trigger``.

    Admins only, checked here on the server: the confirm dialog alone is no protection.
    """
    if trigger in (ids.CLEAR_BUTTON, ids.CLEAR_CONFIRM):
        refusal = admin_refusal(settings)
        if refusal:
            return False, no_update, "Clear history: admins only", True, refusal
    if trigger == ids.CLEAR_BUTTON:
        return True, no_update, no_update, no_update, no_update
    if trigger == ids.CLEAR_CONFIRM:
        return False, store.clear(), no_update, no_update, no_update
    return False, no_update, no_update, no_update, no_update
