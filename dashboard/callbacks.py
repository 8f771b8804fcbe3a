"""Dash callbacks: thin wrappers that unpack inputs and call the plain helpers in views.py."""

from __future__ import annotations

from dash import ALL, Dash, Input, Output, State, ctx, no_update
from dash.exceptions import PreventUpdate

from . import ids, views
from .auth import admin_refusal
from .components import status_bar
from .history import HistoryStore
from .settings import DashboardSettings

SHOW = {"display": "inline-flex", "alignItems": "center"}
HIDE = {"display": "none"}


def register_callbacks(app: Dash, settings: DashboardSettings, client, store: HistoryStore) -> None:
    @app.callback(
        Output(ids.RESULTS, "children"),
        Output(ids.REFUSALS, "children"),
        Output(ids.MONOLITH_IMAGE, "options"),
        Output(ids.MONOLITH_IMAGE, "value"),
        Output(ids.CLASSIFY_DONE, "data"),
        Output(ids.UPLOAD, "contents"),
        Input(ids.UPLOAD, "contents"),
        Input({"type": ids.EXAMPLE, "name": ALL}, "n_clicks"),
        State(ids.UPLOAD, "filename"),
        prevent_initial_call=True,
    )
    def classify(contents, _example_clicks, filenames):
        trigger = ctx.triggered_id
        if isinstance(trigger, dict) and trigger.get("type") == ids.EXAMPLE:
            if not ctx.triggered[0]["value"]:
                raise PreventUpdate
            outcomes = views.classify_example(settings, client, store, trigger["name"])
        elif contents:
            outcomes = views.classify_drop(settings, client, store, contents, filenames)
        else:
            raise PreventUpdate
        cards, alert, options, value = views.results_view(outcomes)
        # Clearing the upload's contents lets the same file be dropped again.
        return cards, alert, options, value, len(outcomes), None

    @app.callback(
        Output(ids.STATUS, "children"),
        Output(ids.BACKEND_STORE, "data"),
        Input(ids.STATUS_INTERVAL, "n_intervals"),
    )
    def refresh_status(_n):
        # The poller's latest state: never a backend call on a request thread.
        status = app.server.extensions["warmserve"]["poller"].snapshot()
        return status_bar(status), status

    @app.callback(
        Output(ids.HISTORY_GRAPH, "figure"),
        Output(ids.HISTORY_SUMMARY, "children"),
        Output(ids.HISTORY_TABLE, "children"),
        Output(ids.HISTORY_SIGNATURE, "data"),
        Input(ids.STATUS_INTERVAL, "n_intervals"),
        Input(ids.CLASSIFY_DONE, "data"),
        Input(ids.MONOLITH_DONE, "data"),
        Input(ids.CLEAR_DONE, "data"),
        State(ids.HISTORY_SIGNATURE, "data"),
    )
    def refresh_history(_n, _classified, _monolith, _cleared, last_signature):
        # The history is shared: poll it, but redraw only when another request landed.
        if ctx.triggered_id == ids.STATUS_INTERVAL and last_signature == store.signature():
            raise PreventUpdate
        return views.history_view(store)

    @app.callback(
        Output(ids.DOWNLOAD, "data"),
        Input(ids.DOWNLOAD_BUTTON, "n_clicks"),
        prevent_initial_call=True,
    )
    def download_history(_n):
        return views.history_csv(store)

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
        # Admins only, checked here on the server: the confirm dialog alone is no protection.
        if ctx.triggered_id in (ids.CLEAR_BUTTON, ids.CLEAR_CONFIRM):
            refusal = admin_refusal(settings)
            if refusal:
                return False, no_update, "Clear history: admins only", True, refusal
        if ctx.triggered_id == ids.CLEAR_BUTTON:
            return True, no_update, no_update, no_update, no_update
        if ctx.triggered_id == ids.CLEAR_CONFIRM:
            return False, store.clear(), no_update, no_update, no_update
        return False, no_update, no_update, no_update, no_update

    @app.callback(
        Output(ids.MONOLITH_RESULT, "children"),
        Output(ids.MONOLITH_DONE, "data"),
        Input(ids.MONOLITH_BUTTON, "n_clicks"),
        # Only the chosen image's sha256 comes from the browser: the model comes from the server's settings
        # and the image's name from the server's history, never from the dropdown's options or a dcc.Store.
        State(ids.MONOLITH_IMAGE, "value"),
        background=True,
        running=[
            (Output(ids.MONOLITH_BUTTON, "disabled"), True, False),
            (Output(ids.MONOLITH_SPINNER, "style"), SHOW, HIDE),
        ],
        progress=[Output(ids.MONOLITH_PROGRESS, "children")],
        progress_default=["Asking for a monolith slot…"],
        prevent_initial_call=True,
    )
    def run_monolith(set_progress, n_clicks, sha256):
        if not n_clicks:
            raise PreventUpdate
        # A background callback runs in a worker process of its own: it opens its own store there
        # (SQLite connections must not cross a fork) instead of using the parent's.
        panel = views.run_monolith_view(settings, HistoryStore.from_settings(settings), sha256,
                                        lambda text: set_progress([text]))
        return panel, n_clicks
