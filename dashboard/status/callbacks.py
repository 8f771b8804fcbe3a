"""The status feature's Dash callback: the status bar from the poller's latest state (never a backend call)."""

from __future__ import annotations

from dash import Dash, Input, Output

from . import controller, ids
from .poller import StatusPoller


def register_callbacks(app: Dash, poller: StatusPoller) -> None:
    @app.callback(
        Output(ids.STATUS, "children"),
        Output(ids.BACKEND_STORE, "data"),
        Input(ids.STATUS_INTERVAL, "n_intervals"),
    )
    def refresh_status(_n):
        return controller.status_view(poller)
