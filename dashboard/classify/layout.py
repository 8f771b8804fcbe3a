"""The classify feature's layout: the Classify card (upload zone, example gallery) and what its callback draws
into it (one result card per classified image, one alert for the refusals)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import dash_bootstrap_components as dbc
from dash import dcc, html

from model_backend.protocol import STAGES

from ..common.components import stage_table
from ..common.formatting import format_bytes, format_ms
from ..settings import DashboardSettings
from . import ids
from .figures import top_k_figure
from .uploads import Outcome

IMAGE_FORMATS = "JPEG, PNG, WebP, GIF, BMP or TIFF"
GRAPH_CONFIG = {"displayModeBar": False, "responsive": True}
#: the backend's stages (protocol.STAGES, in order) shown on a result card; the total gets a bold row of its own
TOTAL = "total"
CARD_STAGES = tuple((stage, stage) for stage in STAGES if stage != TOTAL)
#: error code -> the reason a person reads first
REASONS = {
    "bad_image": "not an image, or corrupt",
    "too_large": "over the size limit",
    "bad_request": "not sent",
    "unavailable": "backend down",
    "not_ready": "backend still warming up",
    "overloaded": "backend busy",
    "timeout": "backend too slow to answer",
    "internal": "backend error",
}


def list_examples(assets_dir: Path) -> list[str]:
    """File names of the example photos shipped under assets/examples/."""
    folder = Path(assets_dir) / "examples"
    return sorted(p.name for p in folder.glob("*.jpg")) if folder.is_dir() else []


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


def example_gallery(names: Sequence[str]) -> html.Div:
    """Clickable example photos (assets/examples/*.jpg)."""
    if not names:
        return html.Div()
    buttons = [
        html.Button(
            [html.Img(src=f"/assets/examples/{name}", alt=name), html.Span(name.rsplit(".", 1)[0])],
            id={"type": ids.EXAMPLE, "name": name}, className="example-thumb", n_clicks=0, title=f"Classify {name}",
        )
        for name in names
    ]
    return html.Div([html.Div("…or try an example:", className="text-muted small mb-1"),
                     html.Div(buttons, className="example-gallery")])


def result_card(outcome: Outcome) -> dbc.Card:
    """Thumbnail, top-k bars, round trip, stage breakdown and batch size for one classified image."""
    reply = outcome.reply
    top = reply.top if reply is not None else None
    timings = reply.timings_ms.to_wire() if reply is not None else {}
    thumb = html.Img(src=outcome.thumbnail, className="result-thumb", alt=outcome.name) if outcome.thumbnail else \
        html.Div("no preview", className="result-thumb placeholder-thumb")
    return dbc.Card([
        dbc.CardHeader([html.Span(outcome.name, className="fw-semibold text-truncate result-name"),
                        html.Span(f"{top.label} · {top.p:.0%}" if top else "? · 0%", className="top1 ms-2")]),
        dbc.CardBody(dbc.Row([
            dbc.Col(thumb, width="auto"),
            dbc.Col(dcc.Graph(figure=top_k_figure(outcome.predictions), config=GRAPH_CONFIG, className="topk-graph"),
                    className="topk-col"),
            dbc.Col([
                html.Div([html.Span("round trip ", className="text-muted"),
                          html.Strong(format_ms(outcome.latency_ms), className="roundtrip")]),
                html.Div([html.Span("batch size ", className="text-muted"),
                          dbc.Badge(str(reply.batch_size if reply else "?"), color="secondary", className="batch-size")]),
                stage_table(timings, CARD_STAGES, total=("backend total", timings.get(TOTAL))),
            ], width="auto", className="timings-col"),
        ], className="g-3 align-items-center")),
    ], className="result-card mb-3")


def refusals_alert(outcomes: Sequence[Outcome]) -> dbc.Alert | None:
    """One alert listing every image that was not classified, why, and the backend's own message."""
    failed = [o for o in outcomes if not o.ok]
    if not failed:
        return None
    backend_down = all(o.error_code in ("unavailable", "not_ready", "timeout", "overloaded") for o in failed)
    title = "The backend could not classify these images right now:" if backend_down else "Not classified:"
    items = [html.Li([html.Strong(o.name), f" — {REASONS.get(o.error_code or '', o.error_code)}: ",
                      html.Span(o.error_message or "", className="error-message")]) for o in failed]
    hint = html.Div("Check the status bar above; drop the images again once the backend is ready.",
                    className="small mt-1") if backend_down else None
    return dbc.Alert([html.Div(title, className="fw-semibold"), html.Ul(items, className="mb-0"), hint],
                     color="danger" if backend_down else "warning", className="refusals")
