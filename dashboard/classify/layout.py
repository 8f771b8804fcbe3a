"""The classify feature's layout: the Classify card (upload zone, example gallery) and what its callback draws
into it (one result card per classified image, one alert for the refusals).

Every number on a result card is an explained term (``common/glossary.py``):
hover it or tab to it for its exact definition. A result below the
``unsure_below`` setting gets muted bars and an "unsure" badge that says why.
The upload zone is a <label> around react-dropzone's file input: Tab reaches
the input (the zone shows a focus ring), Enter or Space opens the file dialog,
and the label's text is the input's name.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import dash_bootstrap_components as dbc
from dash import dcc, html

from model_backend.protocol import STAGES

from ..common.components import explained, stage_table
from ..common.figures import GRAPH_CONFIG
from ..common.formatting import format_bytes, format_ms
from ..common.glossary import SERVICE_TERMS, unsure_text
from ..settings import DashboardSettings
from . import ids
from .figures import is_unsure, top_k_figure
from .thumbnails import thumbnail_url
from .uploads import Outcome

IMAGE_FORMATS = "JPEG, PNG, WebP, GIF, BMP or TIFF"
#: the default for result_card's unsure_below (the app passes its setting)
DEFAULT_UNSURE_BELOW = DashboardSettings.unsure_below
#: the backend's stages (protocol.STAGES, in order) shown on a result card; the total gets a bold row of its own
TOTAL = "total"
CARD_STAGES = tuple((stage, stage) for stage in STAGES if stage != TOTAL)
#: error code -> the reason a person reads first
REASONS = {
    "bad_image": "not an image, or corrupt",
    "too_large": "over the size limit",
    "bad_request": "not sent",  # its message says why: "only 16 images are sent per drop and this was file 18; ..."
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
    # The <label> around the zone names its file input (react-dropzone's own, which Dash gives no props); that
    # input is what Tab reaches, Enter or Space opens the file dialog, and a click anywhere on the label opens it
    # too (disable_click: the zone's own click handler would open a second one).
    upload = html.Label(dcc.Upload(
        id=ids.UPLOAD, multiple=True, disable_click=True, className="upload-zone",
        className_active="upload-zone active", className_reject="upload-zone reject",
        children=html.Div([
            html.Div("Drag and drop images here, or", className="fw-semibold"),
            html.Span("Choose images…", id=ids.UPLOAD_BUTTON, className="btn btn-primary btn-sm my-2"),
            html.Div(f"{IMAGE_FORMATS}; up to {format_bytes(settings.max_image_bytes)} each, "
                     f"{settings.max_files} at a time (sent together, so the backend can batch them).",
                     className="small text-muted"),
        ]),
    ), className="d-block mb-0 upload-label")
    return dbc.Card([
        dbc.CardHeader(html.H2("Classify", className="h5 mb-0")),
        dbc.CardBody([
            upload,
            example_gallery(examples),
            dcc.Loading(html.Div([html.Div(id=ids.REFUSALS), html.Div(id=ids.RESULTS)], className="mt-3"),
                        type="default", delay_show=150),
            dcc.Store(id=ids.CLASSIFY_DONE),
            # The session's results (small records, no images: session_results.py) survive a reload of this tab.
            dcc.Store(id=ids.SESSION_RESULTS, storage_type="session"),
        ]),
    ], className="mb-3")


def example_gallery(names: Sequence[str]) -> html.Div:
    """The example photos (assets/examples/*.jpg) as buttons: Tab reaches each, Enter or Space classifies it."""
    if not names:
        return html.Div()
    label_id = "example-gallery-label"
    buttons = [
        html.Button(
            [html.Img(src=f"/assets/examples/{name}", alt=""), html.Span(name.rsplit(".", 1)[0])],
            id={"type": ids.EXAMPLE, "name": name}, type="button", className="example-thumb", n_clicks=0,
            title=f"Classify {name}", **{"aria-label": f"Classify the example photo {name}"},
        )
        for name in names
    ]
    return html.Div([html.Div("…or try an example:", id=label_id, className="text-muted small mb-1"),
                     html.Div(buttons, className="example-gallery", role="group", **{"aria-labelledby": label_id})])


def result_card(outcome: Outcome, unsure_below: float = DEFAULT_UNSURE_BELOW, key: object = 0) -> dbc.Card:
    """Thumbnail, top-k bars, round trip, stage breakdown and batch size for one classified image.

    ``key`` makes the card's tooltip ids unique on the page (the card's position in the results).
    """
    reply = outcome.reply
    top = reply.top if reply is not None else None
    timings = reply.timings_ms.to_wire() if reply is not None else {}
    unsure = is_unsure(top.p if top else None, unsure_below)
    prefix = f"result-{_id_part(key)}"
    src = outcome.thumbnail or (thumbnail_url(outcome.sha256) if outcome.sha256 else None)
    thumb = html.Img(src=src, className="result-thumb", alt=outcome.name) if src else \
        html.Div("no preview", className="result-thumb placeholder-thumb")
    header = [html.Span(outcome.name, className="fw-semibold text-truncate result-name"),
              html.Span([html.Span(f"{top.label} · {top.p:.0%}" if top else "? · 0%",
                                   className="top1 unsure" if unsure else "top1"),
                         unsure_badge(top.p, unsure_below, f"{prefix}-unsure") if unsure else None],
                        className="ms-2 text-nowrap")]
    return dbc.Card([
        dbc.CardHeader(header),
        dbc.CardBody(dbc.Row([
            dbc.Col(thumb, width="auto"),
            dbc.Col(dcc.Graph(figure=top_k_figure(outcome.predictions, unsure=unsure), config=GRAPH_CONFIG,
                              className="topk-graph"),
                    className="topk-col"),
            dbc.Col([
                html.Div([explained("round trip", SERVICE_TERMS["roundtrip"], f"{prefix}-roundtrip", "text-muted"),
                          " ", html.Strong(format_ms(outcome.latency_ms), className="roundtrip")]),
                html.Div([explained("batch size", SERVICE_TERMS["batch_size"], f"{prefix}-batch_size", "text-muted"),
                          " ", dbc.Badge(str(reply.batch_size if reply else "?"), color="secondary",
                                         className="batch-size")]),
                stage_table(timings, CARD_STAGES, total=("backend total", timings.get(TOTAL)), help=SERVICE_TERMS,
                            id_prefix=prefix),
            ], width="auto", className="timings-col"),
        ], className="g-3 align-items-center")),
    ], className="result-card result-unsure mb-3" if unsure else "result-card mb-3")


def result_tile(outcome: Outcome, unsure_below: float = DEFAULT_UNSURE_BELOW, key: object = 0) -> html.Details:
    """One image of a multi-image drop, compact (thumbnail, top-1, confidence, round trip); opens to its full card.

    A <details> element: Tab reaches its summary, Enter or Space opens it. The full card is drawn when it first
    opens (a callback fills the tile's body), so fifty tiles cost a few kilobytes, not fifty charts.
    """
    top = outcome.reply.top if outcome.reply is not None else None
    unsure = is_unsure(top.p if top else None, unsure_below)
    src = outcome.thumbnail or (thumbnail_url(outcome.sha256) if outcome.sha256 else None)
    thumb = html.Img(src=src, alt="", className="tile-thumb") if src else html.Div(className="tile-thumb placeholder-thumb")
    tile_id = {"sha256": outcome.sha256 or "", "key": _id_part(key)}
    summary = html.Summary([
        thumb,
        html.Span([
            html.Span(outcome.name, className="tile-name text-truncate", title=outcome.name),
            html.Span([html.Span(top.label if top else "?", className="tile-label text-truncate"),
                       html.Span(f"{top.p:.0%}" if top else "?", className="tile-p")],
                      className="top1 unsure tile-top1" if unsure else "top1 tile-top1"),
            html.Span([format_ms(outcome.latency_ms), html.Span("unsure", className="badge text-bg-warning ms-1")
                       if unsure else None], className="tile-latency text-muted"),
        ], className="tile-text"),
    ], id={"type": ids.TILE, **tile_id}, n_clicks=0, className="tile-summary",
        title=f"{outcome.name}: show the full result")
    body = html.Div(html.Div("Loading the full result…", className="small text-muted"),
                    id={"type": ids.TILE_CARD, **tile_id}, className="tile-card")
    return html.Details([summary, body], className="result-tile tile-unsure" if unsure else "result-tile")


def tile_card(outcome: Outcome | None, unsure_below: float = DEFAULT_UNSURE_BELOW, key: object = 0):
    """What an opened tile shows: the image's full card, or why it cannot (no longer among this tab's results)."""
    if outcome is None:
        return html.Div("This result is no longer among this tab's results.", className="small text-muted")
    return result_card(outcome, unsure_below, key=f"tile-{_id_part(key)}")


def drop_items(outcomes: Sequence[Outcome], unsure_below: float = DEFAULT_UNSURE_BELOW, first_key: int = 0,
               compact: bool | None = None) -> list:
    """The classified images of a drop: one image gets its full card, several get compact tiles (``compact``
    forces either). Keys (tooltip ids) count up from ``first_key``."""
    ok = [o for o in outcomes if o.ok]
    compact = len(ok) > 1 if compact is None else compact
    build = result_tile if compact else result_card
    return [build(o, unsure_below, key=first_key + position) for position, o in enumerate(ok)]


def session_view(newest: Sequence[Outcome], earlier: Sequence[Outcome], limit: int,
                 unsure_below: float = DEFAULT_UNSURE_BELOW) -> list:
    """The results area: the newest drop (a full card, or a grid of tiles for several images), then the session's
    earlier results as tiles, then how many the tab keeps."""
    if not newest:
        return []
    items = drop_items(newest, unsure_below)
    children = []
    if len(newest) > 1:
        children.append(html.Div(drop_summary(newest), className="drop-summary small text-muted mb-2"))
        children.append(html.Div(items, className="result-grid mb-3"))
    else:
        children.extend(items)
    if earlier:
        children.append(html.H3(f"Earlier in this session ({len(earlier)})", className="h6 mt-2 mb-2 earlier-title"))
        children.append(html.Div(drop_items(earlier, unsure_below, first_key=len(items), compact=True),
                                 className="result-grid mb-2 earlier-grid"))
    children.append(html.Div(f"This tab keeps your last {limit} results, through reloads (a tile opens to its full "
                             "result). The history below has every request.", className="small text-muted session-note"))
    return children


def drop_summary(outcomes: Sequence[Outcome]) -> str:
    """"16 images in this drop, median round trip 120 ms": a line above the grid."""
    latencies = sorted(o.latency_ms for o in outcomes if o.latency_ms is not None)
    median = latencies[len(latencies) // 2] if latencies else None
    text = f"{len(outcomes)} images in this drop"
    return text + (f", median round trip {format_ms(median)}" if median is not None else "") + \
        ". Select an image to see its full result."


def unsure_badge(top_p: float, unsure_below: float, badge_id: str) -> html.Span:
    """The "unsure" badge: a tab stop whose tooltip (and description) says the threshold."""
    text = unsure_text(top_p, unsure_below)
    return html.Span([
        html.Span("unsure", id=badge_id, className="badge text-bg-warning ms-2 unsure-badge", tabIndex=0,
                  **{"aria-describedby": f"{badge_id}-help"}),
        html.Span(text, id=f"{badge_id}-help", hidden=True),
        dbc.Tooltip(text, target=badge_id, placement="top", className="term-tip"),
    ])


def _id_part(key: object) -> str:
    """A piece of a component id made of letters, digits, '_' and '-' only."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", str(key))[:40] or "0"


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
                     color="danger" if backend_down else "warning", className="refusals", dismissable=True)
