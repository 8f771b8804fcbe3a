"""The page: status bar, classify (upload + examples + results), the monolith comparison and the latency history."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import dash_bootstrap_components as dbc
from dash import dcc, html

from . import ids
from .classify import format_bytes
from .components import example_gallery
from .figures import empty_figure
from .settings import DashboardSettings

IMAGE_FORMATS = "JPEG, PNG, WebP, GIF, BMP or TIFF"


def list_examples(assets_dir: Path) -> list[str]:
    """File names of the example photos shipped under assets/examples/."""
    folder = Path(assets_dir) / "examples"
    return sorted(p.name for p in folder.glob("*.jpg")) if folder.is_dir() else []


def build_layout(settings: DashboardSettings, examples: Sequence[str]) -> html.Div:
    return dbc.Container([
        header(),
        status_section(settings),
        classify_section(settings, examples),
        monolith_section(),
        history_section(),
    ], fluid="lg", className="py-3")


def header() -> html.Div:
    return html.Div([
        html.H1(["warmserve", html.Span(" image classifier", className="text-muted fw-light")], className="h3 mb-0"),
        html.Div("One warm model process behind ZeroMQ, compared with starting TensorFlow for every image.",
                 className="text-muted small"),
    ], className="mb-3")


def status_section(settings: DashboardSettings) -> dbc.Card:
    return dbc.Card(dbc.CardBody([
        html.Div("Checking the backend…", id=ids.STATUS, className="status-bar"),
        dcc.Interval(id=ids.STATUS_INTERVAL, interval=settings.status_interval_ms, n_intervals=0),
        dcc.Store(id=ids.BACKEND_STORE),
    ], className="py-2"), className="mb-3")


def classify_section(settings: DashboardSettings, examples: Sequence[str]) -> dbc.Card:
    upload = dcc.Upload(
        id=ids.UPLOAD, multiple=True, className="upload-zone",
        className_active="upload-zone active", className_reject="upload-zone reject",
        children=html.Div([
            html.Div("Drag and drop images here, or click to browse", className="fw-semibold"),
            html.Div(f"{IMAGE_FORMATS}; up to {format_bytes(settings.max_image_bytes)} each, "
                     f"{settings.max_files} at a time (sent together, so the backend can batch them).",
                     className="small text-muted"),
        ]),
    )
    return dbc.Card([
        dbc.CardHeader(html.H2("Classify", className="h5 mb-0")),
        dbc.CardBody([
            upload,
            example_gallery(examples),
            dcc.Loading(html.Div([html.Div(id=ids.REFUSALS), html.Div(id=ids.RESULTS)], className="mt-3"),
                        type="default", delay_show=150),
            dcc.Store(id=ids.CLASSIFY_DONE),
        ]),
    ], className="mb-3")


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
                                 id=ids.MONOLITH_SPINNER, style={"display": "none"}), className="align-self-center"),
            ], className="g-2 align-items-center"),
            html.Div(id=ids.MONOLITH_RESULT, className="mt-3"),
            dcc.Store(id=ids.MONOLITH_DONE),
        ]),
    ], className="mb-3")


def history_section() -> dbc.Card:
    confirm = dbc.Modal([
        dbc.ModalHeader(dbc.ModalTitle("Clear the latency history?")),
        dbc.ModalBody("This deletes every recorded request, service and monolith, for every user of this dashboard. "
                      "Download the CSV first if you want to keep it."),
        dbc.ModalFooter([dbc.Button("Cancel", id=ids.CLEAR_CANCEL, color="secondary", n_clicks=0),
                         dbc.Button("Delete all records", id=ids.CLEAR_CONFIRM, color="danger", n_clicks=0)]),
    ], id=ids.CLEAR_MODAL, is_open=False)
    return dbc.Card([
        dbc.CardHeader(dbc.Row([
            dbc.Col(html.H2("Latency history", className="h5 mb-0")),
            dbc.Col([
                dbc.Button("Download CSV", id=ids.DOWNLOAD_BUTTON, color="secondary", outline=True, size="sm",
                           className="me-2", n_clicks=0),
                dbc.Button("Clear history…", id=ids.CLEAR_BUTTON, color="danger", outline=True, size="sm", n_clicks=0),
            ], width="auto"),
        ], className="align-items-center")),
        dbc.CardBody([
            html.Div(id=ids.HISTORY_SUMMARY),
            dcc.Graph(id=ids.HISTORY_GRAPH, figure=empty_figure("Loading the history…"),
                      config={"displaylogo": False, "responsive": True}),
            html.H3("Recent requests", className="h6 mt-3"),
            html.Div(id=ids.HISTORY_TABLE, className="history-table-wrap"),
            dcc.Download(id=ids.DOWNLOAD),
            dcc.Store(id=ids.HISTORY_SIGNATURE),
            dcc.Store(id=ids.CLEAR_DONE),
            confirm,
        ]),
    ], className="mb-3")
