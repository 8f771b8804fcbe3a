"""The panel's callback: the snippets for the URL the browser shows (runs once, when the page loads)."""

from __future__ import annotations

from dash import Dash, Input, Output, no_update

from . import ids
from .snippets import base_url, curl_multipart, curl_raw, python_requests


def register_callbacks(app: Dash, auth: bool) -> None:
    @app.callback(
        Output(ids.CURL, "children"),
        Output(ids.CURL_RAW, "children"),
        Output(ids.PYTHON, "children"),
        Input(ids.LOCATION, "href"),
    )
    def fill_snippets(href):
        base = base_url(href)
        if base is None:
            return no_update, no_update, no_update
        return curl_multipart(base, auth), curl_raw(base, auth), python_requests(base, auth)
