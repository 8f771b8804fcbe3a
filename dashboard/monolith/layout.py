"""The monolith feature's layout: the "Compare with the monolith" card and the result panel of a run."""

from __future__ import annotations

from typing import Mapping

import dash_bootstrap_components as dbc
from dash import dcc, html

from model_backend.protocol import MONOLITH_STAGES

from ..common.components import stage_table
from ..common.formatting import format_ms
from ..common.sanitize import MESSAGE_MAX, clean_text
from . import ids

#: what the panel calls the monolith's stages; shown in protocol.MONOLITH_STAGES order (start-up is inside the total)
STAGE_LABELS = {"import": "import TensorFlow", "model_load": "build + load model", "preprocess": "preprocess",
                "inference": "inference", "total": "total (reported)"}
PANEL_STAGES = tuple((stage, STAGE_LABELS[stage]) for stage in MONOLITH_STAGES if stage in STAGE_LABELS)
#: the spinner's style while a run is in progress, and otherwise
SHOW = {"display": "inline-flex", "alignItems": "center"}
HIDE = {"display": "none"}


def monolith_section() -> dbc.Card:
    return dbc.Card([
        dbc.CardHeader(html.H2("Compare with the monolith", className="h5 mb-0")),
        dbc.CardBody([
            html.P("The monolith is the old way: a fresh Python process that imports TensorFlow, loads the model, "
                   "classifies one image and exits. Run it on one of your images to see where its seconds go.",
                   className="small text-muted"),
            dbc.Row([
                dbc.Col(dcc.Dropdown(id=ids.MONOLITH_IMAGE, options=[], placeholder="Classify an image first",
                                     clearable=False), md=5),
                dbc.Col(dbc.Button("Run the monolith on this image", id=ids.MONOLITH_BUTTON, color="danger",
                                   outline=True, n_clicks=0), width="auto"),
                dbc.Col(html.Div([dbc.Spinner(size="sm", color="danger"),
                                  html.Span(id=ids.MONOLITH_PROGRESS, className="ms-2 small")],
                                 id=ids.MONOLITH_SPINNER, style=HIDE), className="align-self-center"),
            ], className="g-2 align-items-center"),
            html.Div(id=ids.MONOLITH_RESULT, className="mt-3"),
            dcc.Store(id=ids.MONOLITH_DONE),
        ]),
    ], className="mb-3")


def monolith_result(result: Mapping, wall_ms: float | None, image_name: str, service_p50: float | None = None) -> dbc.Alert:
    """The monolith's stage timings (or its error) after a run from the UI."""
    error = result.get("error")
    if error:
        message = clean_text(error.get("message") if isinstance(error, Mapping) else error, MESSAGE_MAX)
        return dbc.Alert([html.Strong(f"The monolith failed on {image_name}: "), message], color="danger")
    timings = result.get("timings_ms") or {}
    top = (result.get("predictions") or [{"label": "?", "p": 0}])[0]
    compare = None
    if service_p50 and wall_ms:
        compare = html.Div(f"That is {wall_ms / service_p50:,.0f}× the service's median round trip "
                           f"({format_ms(service_p50)}).", className="mt-1")
    return dbc.Alert([
        html.Div([html.Strong(f"Monolith on {image_name}: "), f"{top['label']} ({top['p']:.0%}) with {result.get('model', '?')}"]),
        stage_table(timings, PANEL_STAGES, total=("wall clock (what you waited)", wall_ms), only_present=True,
                    class_name="monolith-stages"),
        compare,
    ], color="light", className="monolith-result border")


def no_image_panel() -> dbc.Alert:
    """What the panel says when the browser named no kept image."""
    return dbc.Alert("Classify an image first (drop one or click an example), then run the monolith on it.", color="info")


def refused_panel(message: str) -> dbc.Alert:
    """A run refused at once because the line of waiting runs is full."""
    return dbc.Alert(message, color="warning", className="monolith-refused")
