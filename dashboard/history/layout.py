"""The history feature's layout: the Latency history card (chart, summary, recent requests, CSV, clear dialog)
and what its callbacks draw into it (the summary cards and the table)."""

from __future__ import annotations

from typing import Mapping, Sequence

import dash_bootstrap_components as dbc
from dash import dcc, html

from ..common.figures import empty_figure
from ..common.formatting import format_ms, format_time
from ..common.sanitize import MESSAGE_MAX, NAME_MAX, SHORT_MAX, clean_text
from . import ids


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
