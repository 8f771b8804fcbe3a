"""The monolith feature's Dash callback: a background job behind the button, with its progress shown."""

from __future__ import annotations

from dash import Dash, Input, Output, State
from dash.exceptions import PreventUpdate

from ..settings import DashboardSettings
from . import controller, ids
from .layout import HIDE, SHOW


def register_callbacks(app: Dash, settings: DashboardSettings) -> None:
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
        return controller.run_monolith_job(settings, sha256, lambda text: set_progress([text])), n_clicks
