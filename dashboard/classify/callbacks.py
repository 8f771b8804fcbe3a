"""The classify feature's Dash callback: unpack the drop or the example click, call the controller, return its views.

Its results also fill the monolith feature's image picker (only sha256 values:
the monolith takes nothing else from the browser).
"""

from __future__ import annotations

from dash import ALL, Dash, Input, Output, State, ctx
from dash.exceptions import PreventUpdate

from ..history.store import HistoryStore
from ..monolith import ids as monolith_ids
from ..settings import DashboardSettings
from . import controller, ids


def register_callbacks(app: Dash, settings: DashboardSettings, client, store: HistoryStore) -> None:
    @app.callback(
        Output(ids.RESULTS, "children"),
        Output(ids.REFUSALS, "children"),
        Output(monolith_ids.MONOLITH_IMAGE, "options"),
        Output(monolith_ids.MONOLITH_IMAGE, "value"),
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
            outcomes = controller.classify_example(settings, client, store, trigger["name"])
        elif contents:
            outcomes = controller.classify_drop(settings, client, store, contents, filenames)
        else:
            raise PreventUpdate
        cards, alert, options, value = controller.results_view(outcomes, settings.unsure_below)
        # Clearing the upload's contents lets the same file be dropped again.
        return cards, alert, options, value, len(outcomes), None
