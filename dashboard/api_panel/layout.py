"""The panel's layout: a collapsed section with three snippets, each with a copy button, and the API's links.

The snippets are filled in by a callback from the page's own URL (see
``callbacks.py``); until then they show the server's path with a placeholder host.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from ..api.routes import PREFIX
from . import ids
from .snippets import curl_multipart, curl_raw, python_requests

PLACEHOLDER = "http://HOST:PORT"


def snippet_block(title: str, block_id: str, text: str) -> html.Div:
    return html.Div([
        html.Div([
            html.Span(title, className="small fw-semibold"),
            dcc.Clipboard(target_id=block_id, title=f"Copy the {title} snippet", className="api-copy ms-2",
                          style={"display": "inline-block", "cursor": "pointer"}),
        ], className="d-flex align-items-center mb-1"),
        html.Pre(html.Code(text, id=block_id), className="api-snippet p-2 mb-3", tabIndex=0,
                 **{"aria-label": f"{title} snippet"}),
    ])


def api_panel_section(auth: bool) -> dbc.Card:
    return dbc.Card([
        dcc.Location(id=ids.LOCATION, refresh=False),
        html.Details([
            html.Summary(html.H2("Use via API", className="h5 mb-0 d-inline"), className="card-header api-panel-summary"),
            dbc.CardBody([
                html.P(["Classify from a script: send an image, get the top classes and where the time went as JSON. ",
                        "Every route, field and error code is described in ",
                        html.A("the OpenAPI document", href=f"{PREFIX}/openapi.json", target="_blank"), "; ",
                        html.A("health", href=f"{PREFIX}/health", target="_blank"), ", ",
                        html.A("recent history", href=f"{PREFIX}/history?limit=20", target="_blank"), " and ",
                        html.A("Prometheus metrics", href="/metrics", target="_blank"), " are one GET away."],
                       className="small text-muted", id=ids.LINKS),
                snippet_block("curl (multipart)", ids.CURL, curl_multipart(PLACEHOLDER, auth)),
                snippet_block("curl (raw body, named)", ids.CURL_RAW, curl_raw(PLACEHOLDER, auth)),
                snippet_block("Python (requests)", ids.PYTHON, python_requests(PLACEHOLDER, auth)),
            ]),
        ], className="api-panel"),
    ], className="mb-4 api-panel-section")
