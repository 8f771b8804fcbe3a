"""The history feature's Dash callbacks: unpack inputs, call the controller, return its result.

The history redraws when any feature's run lands (classify, monolith, clear)
and, because it is shared with other users, on the status feature's timer.
"""

from __future__ import annotations

from dash import Dash, Input, Output, State, ctx
from dash.exceptions import PreventUpdate

from ..classify import ids as classify_ids
from ..monolith import ids as monolith_ids
from ..settings import DashboardSettings
from ..status import ids as status_ids
from . import controller, ids
from .store import HistoryStore


def register_callbacks(app: Dash, settings: DashboardSettings, store: HistoryStore) -> None:
    @app.callback(
        Output(ids.HISTORY_GRAPH, "figure"),
        Output(ids.HISTORY_SUMMARY, "children"),
        Output(ids.HISTORY_TABLE, "children"),
        Output(ids.HISTORY_SIGNATURE, "data"),
        Input(status_ids.STATUS_INTERVAL, "n_intervals"),
        Input(classify_ids.CLASSIFY_DONE, "data"),
        Input(monolith_ids.MONOLITH_DONE, "data"),
        Input(ids.CLEAR_DONE, "data"),
        State(ids.HISTORY_SIGNATURE, "data"),
    )
    def refresh_history(_n, _classified, _monolith, _cleared, last_signature):
        # The history is shared: poll it, but redraw only when another request landed.
        if ctx.triggered_id == status_ids.STATUS_INTERVAL and last_signature == store.signature():
            raise PreventUpdate
        return controller.history_view(store)

    @app.callback(
        Output(ids.DOWNLOAD, "data"),
        Input(ids.DOWNLOAD_BUTTON, "n_clicks"),
        prevent_initial_call=True,
    )
    def download_history(_n):
        return controller.history_csv(store)

    @app.callback(
        Output(ids.CLEAR_MODAL, "is_open"),
        Output(ids.CLEAR_DONE, "data"),
        Output(ids.CLEAR_BUTTON, "children"),
        Output(ids.CLEAR_BUTTON, "disabled"),
        Output(ids.CLEAR_BUTTON, "title"),
        Input(ids.CLEAR_BUTTON, "n_clicks"),
        Input(ids.CLEAR_CANCEL, "n_clicks"),
        Input(ids.CLEAR_CONFIRM, "n_clicks"),
        prevent_initial_call=True,
    )
    def clear_history(_open, _cancel, _confirm):
        return controller.clear_history(settings, store, ctx.triggered_id)
