"""The status feature's Dash callback: the status bar from the poller's latest state (never a backend call).

It redraws the bar's state and sets the values of the explained facts that stay in the page (see layout.py).
"""

from __future__ import annotations

from dash import Dash, Input, Output

from . import controller, ids
from .layout import EXPLAINED_FACTS, slot_id, term_id, value_id
from .poller import StatusPoller


def register_callbacks(app: Dash, poller: StatusPoller) -> None:
    runtime_term = term_id("runtime")

    @app.callback(
        Output(ids.STATUS, "children"),
        Output(ids.BACKEND_STORE, "data"),
        [Output(value_id(key), "children") for key in EXPLAINED_FACTS],
        [Output(slot_id(key), "style") for key in EXPLAINED_FACTS],
        Output(f"{runtime_term}-help", "children"),
        Output(f"{runtime_term}-tip", "children"),
        Input(ids.STATUS_INTERVAL, "n_intervals"),
    )
    def refresh_status(_n):
        state, status = controller.status_view(poller)
        values, styles, runtime_help = controller.explained_facts_view(status)
        return (state, status, *values, *styles, runtime_help, runtime_help)  # Dash flattens the output lists
