"""Small UI factories (dash-bootstrap-components): status bar, result card, refusals, summary, history table."""

from __future__ import annotations

from typing import Mapping, Sequence

import dash_bootstrap_components as dbc
from dash import dcc, html

from . import ids
from .classify import Outcome
from .figures import format_ms, top_k_figure
from .history import format_time
from .sanitize import MESSAGE_MAX, NAME_MAX, SHORT_MAX, clean_text
from .status import format_duration

GRAPH_CONFIG = {"displayModeBar": False, "responsive": True}

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
STAGES = (("queue", "queue"), ("decode", "decode"), ("preprocess", "preprocess"), ("inference", "inference"))
MONOLITH_STAGES = (("import", "import TensorFlow"), ("model_load", "build + load model"),
                   ("preprocess", "preprocess"), ("inference", "inference"), ("total", "total (reported)"))


def status_bar(status: Mapping) -> html.Div:
    """Reachable/ready badge, model, uptime, requests served and batching settings."""
    if not status.get("reachable"):
        badge = dbc.Badge("Backend unreachable", color="danger", className="me-2")
        detail = status.get("error") or f"Nothing answers at {status.get('address')}."
        return html.Div([badge, html.Span(detail, className="text-danger"),
                         html.Span(" Retrying every few seconds; this page recovers by itself.", className="text-muted")])
    if not status.get("ready"):
        badge = dbc.Badge("Backend warming up", color="warning", text_color="dark", className="me-2")
        return html.Div([badge, html.Span(f"{status.get('model') or 'model'} is loading; uploads wait until it is ready.")])
    facts = [
        ("model", status.get("model")),
        ("uptime", format_duration(status.get("uptime_s"))),
        ("requests served", status.get("requests_served")),
        ("batching", f"up to {status.get('max_batch', '?')} images, waits ≤ {status.get('max_wait_ms', '?')} ms"),
        ("queue", status.get("queue_size")),
    ]
    if status.get("workers"):
        facts.append(("workers", status["workers"]))
    items = [html.Span([html.Span(f"{k} ", className="text-muted"), html.Strong(str(v))], className="me-3")
             for k, v in facts if v is not None]
    return html.Div([dbc.Badge("Backend ready", color="success", className="me-2"), *items])


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
    top = outcome.predictions[0] if outcome.predictions else {"label": "?", "p": 0}
    timings = outcome.timings
    stage_rows = [html.Tr([html.Td(label), html.Td(format_ms(timings.get(key)), className="text-end")])
                  for key, label in STAGES]
    stage_rows.append(html.Tr([html.Td("backend total"), html.Td(format_ms(timings.get("total")), className="text-end")],
                              className="fw-semibold"))
    thumb = html.Img(src=outcome.thumbnail, className="result-thumb", alt=outcome.name) if outcome.thumbnail else \
        html.Div("no preview", className="result-thumb placeholder-thumb")
    return dbc.Card([
        dbc.CardHeader([html.Span(outcome.name, className="fw-semibold text-truncate result-name"),
                        html.Span(f"{top['label']} · {top['p']:.0%}", className="top1 ms-2")]),
        dbc.CardBody(dbc.Row([
            dbc.Col(thumb, width="auto"),
            dbc.Col(dcc.Graph(figure=top_k_figure(outcome.predictions), config=GRAPH_CONFIG, className="topk-graph"),
                    className="topk-col"),
            dbc.Col([
                html.Div([html.Span("round trip ", className="text-muted"),
                          html.Strong(format_ms(outcome.latency_ms), className="roundtrip")]),
                html.Div([html.Span("batch size ", className="text-muted"),
                          dbc.Badge(str(reply.get("batch_size", "?")), color="secondary", className="batch-size")]),
                html.Table(html.Tbody(stage_rows), className="table table-sm stage-table mt-2 mb-0"),
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


def summary_view(summary: Mapping) -> dbc.Row:
    """Count, p50 and p95 for service and monolith, and the speedup (monolith p50 / service p50)."""
    def stat_card(kind: str, title: str, css: str) -> dbc.Col:
        s = summary.get(kind, {})
        errors = f" ({s.get('errors')} failed)" if s.get("errors") else ""
        return dbc.Col(dbc.Card(dbc.CardBody([
            html.Div(title, className=f"stat-title {css}"),
            html.Div([html.Span(str(s.get("count", 0)), id=f"{kind}-count", className="stat-count"),
                      html.Span(f" request{'' if s.get('count') == 1 else 's'}{errors}", className="text-muted")]),
            html.Div([html.Span("p50 ", className="text-muted"), html.Strong(format_ms(s.get("p50"))),
                      html.Span("  p95 ", className="text-muted ms-2"), html.Strong(format_ms(s.get("p95")))]),
        ])), md=4)

    speed = summary.get("speedup")
    speed_text = f"{speed:,.0f}× faster" if speed and speed >= 10 else (f"{speed:.1f}× faster" if speed else "—")
    hint = "median monolith ÷ median service" if speed else "run the monolith once to compare"
    return dbc.Row([
        stat_card("service", "Service (warm backend)", "service"),
        stat_card("monolith", "Monolith (fresh process)", "monolith"),
        dbc.Col(dbc.Card(dbc.CardBody([html.Div("Speedup", className="stat-title"),
                                       html.Div(speed_text, className="stat-count speedup"),
                                       html.Div(hint, className="text-muted small")])), md=4),
    ], className="g-3 mb-3")


def history_table(rows: Sequence[Mapping]) -> dbc.Table:
    """The most recent requests, newest first."""
    header = html.Thead(html.Tr([html.Th(h) for h in ("time (UTC)", "kind", "image", "latency", "batch", "top-1", "result")]))
    body = []
    for r in rows:
        result = html.Span("ok", className="text-success") if r.get("ok") else \
            html.Span(clean_text(r.get("error_code"), SHORT_MAX) or "error", className="text-danger",
                      title=clean_text(r.get("error_message"), MESSAGE_MAX))
        top1 = f"{clean_text(r['top1_label'], SHORT_MAX)} ({r['top1_p']:.0%})" \
            if r.get("top1_label") and isinstance(r.get("top1_p"), (int, float)) else ""
        body.append(html.Tr([html.Td(format_time(r["ts"])[11:23]), html.Td(r.get("kind")),
                             # capped on the way out too: rows stored before names were capped stay small on screen
                             html.Td(clean_text(r.get("image"), NAME_MAX), className="text-truncate history-image"),
                             html.Td(format_ms(r.get("latency_ms")), className="text-end"),
                             html.Td(r.get("batch_size") or ""), html.Td(top1), html.Td(result)]))
    return dbc.Table([header, html.Tbody(body)], size="sm", hover=True, responsive=True, className="history-table mb-0")


def monolith_result(result: Mapping, wall_ms: float | None, image_name: str, service_p50: float | None = None) -> dbc.Alert:
    """The monolith's stage timings (or its error) after a run from the UI."""
    error = result.get("error")
    if error:
        message = clean_text(error.get("message") if isinstance(error, Mapping) else error, MESSAGE_MAX)
        return dbc.Alert([html.Strong(f"The monolith failed on {image_name}: "), message], color="danger")
    timings = result.get("timings_ms") or {}
    rows = [html.Tr([html.Td(label), html.Td(format_ms(timings.get(key)), className="text-end")])
            for key, label in MONOLITH_STAGES if key in timings]
    rows.append(html.Tr([html.Td("wall clock (what you waited)"), html.Td(format_ms(wall_ms), className="text-end")],
                        className="fw-semibold"))
    top = (result.get("predictions") or [{"label": "?", "p": 0}])[0]
    compare = None
    if service_p50 and wall_ms:
        compare = html.Div(f"That is {wall_ms / service_p50:,.0f}× the service's median round trip "
                           f"({format_ms(service_p50)}).", className="mt-1")
    return dbc.Alert([
        html.Div([html.Strong(f"Monolith on {image_name}: "), f"{top['label']} ({top['p']:.0%}) with {result.get('model', '?')}"]),
        html.Table(html.Tbody(rows), className="table table-sm stage-table mt-2 mb-0 monolith-stages"), compare,
    ], color="light", className="monolith-result border")
