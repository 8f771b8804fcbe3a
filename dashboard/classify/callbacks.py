"""The classify feature's Dash callbacks: a drop or an example click adds to the tab's session results; the
session results draw the results area and fill the monolith feature's image picker.

Two callbacks, so that a reload draws the same page as the drops did: the store
(sessionStorage, ``session_results.py``) is the one source of both. A third
draws a tile's full card when it is first opened. The picker
gets only sha256 values: the monolith takes nothing else from the browser.
"""

from __future__ import annotations

from dash import ALL, MATCH, Dash, Input, Output, State, ctx, no_update
from dash.exceptions import PreventUpdate

from ..history.store import HistoryStore
from ..monolith import ids as monolith_ids
from ..settings import DashboardSettings
from . import controller, ids


def register_callbacks(app: Dash, settings: DashboardSettings, client, store: HistoryStore) -> None:
    @app.callback(
        Output(ids.SESSION_RESULTS, "data"),
        Output(ids.REFUSALS, "children"),
        Output(ids.CLASSIFY_DONE, "data"),
        Output(ids.UPLOAD, "contents"),
        Input(ids.UPLOAD, "contents"),
        Input({"type": ids.EXAMPLE, "name": ALL}, "n_clicks"),
        State(ids.UPLOAD, "filename"),
        State(ids.SESSION_RESULTS, "data"),
        prevent_initial_call=True,
    )
    def classify(contents, _example_clicks, filenames, stored):
        trigger = ctx.triggered_id
        if isinstance(trigger, dict) and trigger.get("type") == ids.EXAMPLE:
            if not ctx.triggered[0]["value"]:
                raise PreventUpdate
            outcomes = controller.classify_example(settings, client, store, trigger["name"])
        elif contents:
            outcomes = controller.classify_drop(settings, client, store, contents, filenames)
        else:
            raise PreventUpdate
        kept, alert = controller.after_drop(settings, stored, outcomes)
        # A drop that classified nothing leaves the results and the picker as they were; clearing the upload's
        # contents lets the same file be dropped again.
        return (no_update if kept is None else kept), alert, len(outcomes), None

    @app.callback(
        Output(ids.RESULTS, "children"),
        Output(monolith_ids.MONOLITH_IMAGE, "options"),
        Output(monolith_ids.MONOLITH_IMAGE, "value"),
        Input(ids.SESSION_RESULTS, "data"),
    )
    def show_session(stored):
        return controller.session_results_view(settings, stored)

    @app.callback(
        Output({"type": ids.TILE_CARD, "sha256": MATCH, "key": MATCH}, "children"),
        Input({"type": ids.TILE, "sha256": MATCH, "key": MATCH}, "n_clicks"),
        State(ids.SESSION_RESULTS, "data"),
        prevent_initial_call=True,
    )
    def open_tile(n_clicks, stored):
        if not n_clicks or n_clicks > 1:  # drawn on the first open; a closed and reopened tile keeps its card
            raise PreventUpdate
        tile = ctx.triggered_id
        return controller.tile_card_view(settings, stored, tile["sha256"], tile["key"])
