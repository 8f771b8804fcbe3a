"""The history feature's Dash callbacks: unpack inputs, call the controller, return its result.

The history redraws when any feature's run lands (classify, monolith, clear)
and, because it is shared with other users, on the status feature's timer.
Every browser of this process shares one computed view per change of the data
(controller.SharedViews): a poll with nothing new costs one indexed query.
A clientside callback puts the browser's time zone in a store first, so the
server draws every time in the viewer's zone (Dash renders on the server).
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


def register_callbacks(app: Dash, settings: DashboardSettings, store: HistoryStore, poller=None) -> None:
    """``poller`` (the StatusPoller, optional) lends its snapshot: the backend's runtime, when info reports it."""
    views = controller.SharedViews(store, poller)
    app.clientside_callback(
        "function(_) { try { return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC'; }"
        " catch (e) { return 'UTC'; } }",
        Output(ids.HISTORY_TIMEZONE, "data"),
        Input(ids.HISTORY_TIMEZONE, "id"),
    )

    @app.callback(
        Output(ids.HISTORY_GRAPH, "figure"),
        Output(ids.HISTORY_DISTRIBUTION, "figure"),
        Output(ids.HISTORY_TIME_NOTE, "children"),
        Output(ids.HISTORY_SUMMARY, "children"),
        Output(ids.HISTORY_TABLE, "children"),
        Output(ids.HISTORY_SIGNATURE, "data"),
        Input(status_ids.STATUS_INTERVAL, "n_intervals"),
        Input(classify_ids.CLASSIFY_DONE, "data"),
        Input(monolith_ids.MONOLITH_DONE, "data"),
        Input(ids.CLEAR_DONE, "data"),
        Input(ids.HISTORY_TIMEZONE, "data"),
        State(ids.HISTORY_SIGNATURE, "data"),
    )
    def refresh_history(_n, _classified, _monolith, _cleared, zone_name, last_signature):
        # The history is shared: poll it, but redraw only when another request landed (or the runtime changed);
        # the view itself is computed once per change for every browser (controller.SharedViews).
        if ctx.triggered_id == status_ids.STATUS_INTERVAL and last_signature == views.page_signature():
            raise PreventUpdate
        view = views.view(zone_name)
        return view.time_figure, view.distribution_figure, view.time_note, view.summary, view.table, view.signature

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
