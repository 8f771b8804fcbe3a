"""The monolith feature's layout: the "Compare with the monolith" card and the result panel of a run.

The panel's rows add up to the wall clock: the four stages the monolith times
itself (import, build + load, decode + preprocess, inference) and a row for the
rest, which no stage covers: starting the process and Python, reading the image,
and after inference printing the result and exiting, TensorFlow's shutdown
included (the dashboard's wall clock minus those stages). The monolith's own
"total" adds a start-up estimate from the process's creation time, which psutil
reads to whole seconds of boot time, so the panel does not lean on it.
"""

from __future__ import annotations

from typing import Mapping

import dash_bootstrap_components as dbc
from dash import dcc, html

from ..common.components import explained, stage_table
from ..common.formatting import format_ms
from ..common.glossary import MONOLITH_TERMS
from ..common.sanitize import MESSAGE_MAX, SHORT_MAX, clean_text
from . import ids

#: the stages the monolith times itself (model_backend/monolith.py), in order, as the panel names them
STAGE_LABELS = {"import": "import TensorFlow", "model_load": "build + load model", "preprocess": "decode + preprocess",
                "inference": "inference (cold)"}
PANEL_STAGES = tuple(STAGE_LABELS.items())
#: the visible label of the image picker
IMAGE_LABEL = "monolith-image-label"
REST = "rest"
REST_LABEL = "start-up and exit (not in any stage)"
#: the runtime the monolith always uses (it says so in its JSON; older ones did not)
MONOLITH_RUNTIME = "tensorflow"
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
                # Dash's dropdown names its button after the value (aria-labelledby), so the label also names
                # a group around it, which screen readers announce on the way in.
                dbc.Col(html.Div([dbc.Label("Image to run the monolith on", id=IMAGE_LABEL, html_for=ids.MONOLITH_IMAGE,
                                            className="small mb-1"),
                                  dcc.Dropdown(id=ids.MONOLITH_IMAGE, options=[], placeholder="Classify an image first",
                                               clearable=False)], role="group", **{"aria-labelledby": IMAGE_LABEL}),
                        md=5),
                dbc.Col(dbc.Button("Run the monolith on this image", id=ids.MONOLITH_BUTTON, color="danger",
                                   outline=True, n_clicks=0), width="auto", className="align-self-end"),
                dbc.Col(html.Div([dbc.Spinner(size="sm", color="danger"),
                                  html.Span(id=ids.MONOLITH_PROGRESS, className="ms-2 small")],
                                 id=ids.MONOLITH_SPINNER, style=HIDE), className="align-self-end pb-2"),
            ], className="g-2"),
            html.Div(id=ids.MONOLITH_RESULT, className="mt-3"),
            dcc.Store(id=ids.MONOLITH_DONE),
        ]),
    ], className="mb-3")


def monolith_result(result: Mapping, wall_ms: float | None, image_name: str, service_p50: float | None = None,
                    compared_with: str = "the service's median round trip") -> dbc.Alert:
    """The monolith's stage timings (or its error) after a run from the UI: rows that add up to the wall clock."""
    error = result.get("error")
    if error:
        message = clean_text(error.get("message") if isinstance(error, Mapping) else error, MESSAGE_MAX)
        return dbc.Alert([html.Strong(f"The monolith failed on {image_name}: "), message], color="danger")
    timings = dict(result.get("timings_ms") or {})
    top = (result.get("predictions") or [{"label": "?", "p": 0}])[0]
    runtime = result.get("runtime") if isinstance(result.get("runtime"), str) else MONOLITH_RUNTIME
    stages = [(key, label) for key, label in PANEL_STAGES if key in timings]
    rest = rest_ms(timings, wall_ms)
    if rest is not None:
        timings[REST] = rest
        stages.append((REST, REST_LABEL))
        total = ("wall clock (what you waited)", wall_ms)
        total_key = "wall"
    else:  # no wall clock measured: the monolith's own total is all there is
        total = ("total (reported)", timings.get("total"))
        total_key = "total"
    compare = None
    if service_p50 and wall_ms:
        compare = html.Div(f"That is {wall_ms / service_p50:,.0f}× {compared_with} ({format_ms(service_p50)}).",
                           className="mt-1 monolith-compare")
    return dbc.Alert([
        html.Div([html.Strong(f"Monolith on {image_name}: "),
                  f"{top['label']} ({top['p']:.0%}) with {result.get('model', '?')} on ",
                  explained(clean_text(runtime, SHORT_MAX), MONOLITH_TERMS["runtime"], "monolith-runtime",
                            "monolith-runtime")]),
        stage_table(timings, stages, total=total, total_key=total_key, class_name="monolith-stages",
                    help=MONOLITH_TERMS, id_prefix="monolith"),
        compare,
    ], color="light", className="monolith-result border")


def rest_ms(timings: Mapping, wall_ms: float | None) -> float | None:
    """The wall clock minus the stages the monolith timed: what no stage covers (None without a wall clock)."""
    if wall_ms is None:
        return None
    timed = sum(float(timings[key]) for key, _ in PANEL_STAGES if isinstance(timings.get(key), (int, float)))
    return max(float(wall_ms) - timed, 0.0)


def no_image_panel() -> dbc.Alert:
    """What the panel says when the browser named no kept image."""
    return dbc.Alert("Classify an image first (drop one or click an example), then run the monolith on it.", color="info")


def image_gone_panel(keep: int) -> dbc.Alert:
    """What the panel says when the chosen result's image is no longer kept on the server (the oldest go first)."""
    return dbc.Alert(f"This image is no longer kept on the server (it keeps the newest {keep} uploads of every "
                     "visitor). Drop it again, then run the monolith on it.", color="info", className="monolith-gone")


def refused_panel(message: str) -> dbc.Alert:
    """A run refused at once because the line of waiting runs is full."""
    return dbc.Alert(message, color="warning", className="monolith-refused")
