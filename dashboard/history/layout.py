"""The history feature's layout: the Latency history card (chart, summary, recent requests, CSV, clear dialog)
and what its callbacks draw into it (the summary cards and the table)."""

from __future__ import annotations

from datetime import timezone, tzinfo
from typing import Mapping, Sequence

import dash_bootstrap_components as dbc
from dash import dcc, html

from ..common.figures import GRAPH_CONFIG, empty_figure
from ..common.formatting import format_local_time, format_ms, zone_label
from ..common.sanitize import MESSAGE_MAX, NAME_MAX, SHORT_MAX, clean_text
from . import ids
from .figures import GROUP_COLORS, HEIGHT, KEY_NAMES
from .stats import ALONE, GROUP_DEFINITIONS, LOADED, MONOLITH_GROUP

#: what each latency number means (hover text of the info icons and the table headers)
EXPLAIN = {
    "round_trip": "Round trip: from the dashboard sending the image to the backend until the answer came back "
                  "(what a caller waits; network and the backend included).",
    "backend": "Backend total: the backend's own time for the request, from arrival to reply "
               "(queue + decode + preprocess + inference).",
    "queue": "Queue: time waiting in the backend before decoding, or for the forward pass to be free.",
    "decode": "Decode: turning the file's bytes into pixels.",
    "preprocess": "Preprocess: resizing and scaling the pixels for the model.",
    "inference": "Inference: the model's forward pass, shared by the whole batch.",
    "batch": "Batch size: how many images shared that forward pass (1 = this image alone).",
    "monolith": "Monolith wall clock: the fresh process from start to exit: import TensorFlow, load the model, "
                "preprocess, inference.",
    "speedup": "Speedup: monolith p50 ÷ p50 of service requests that ran alone (like with like: one image, "
               "nothing else in the batch or queue).",
    "percentiles": "p50: half the requests were faster (the median). p95: 95 in 100 were faster.",
}




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
        ], className="align-items-center g-2")),
        dbc.CardBody([
            html.Div(id=ids.HISTORY_SUMMARY),
            group_key(),
            dbc.Row([
                dbc.Col([html.H3(["Distribution ", info_icon("dist", "Each column is one kind of request on the same "
                                                             "log scale. The box spans p25 to p75, the whiskers p5 to "
                                                             "p95, the bar is the median (p50); dots are single "
                                                             "requests (up to 300 per column). " + EXPLAIN["round_trip"])],
                                 className="h6"),
                         dcc.Graph(id=ids.HISTORY_DISTRIBUTION, figure=empty_figure("Loading the history…"),
                                   config=GRAPH_CONFIG, className="history-graph",
                                   style={"height": f"{HEIGHT}px"})], lg=5),
                dbc.Col([html.H3(["Over time ", info_icon("time", "Round trip of each request over time, in your "
                                                          "time zone; drag to zoom, double-click to reset.")],
                                 className="h6"),
                         dcc.Graph(id=ids.HISTORY_GRAPH, figure=empty_figure("Loading the history…"),
                                   config=GRAPH_CONFIG, className="history-graph",
                                   style={"height": f"{HEIGHT}px"}),
                         html.Div(id=ids.HISTORY_TIME_NOTE, className="text-muted small history-note")], lg=7),
            ], className="g-3"),
            html.H3("Recent requests", className="h6 mt-3"),
            html.Div(id=ids.HISTORY_TABLE, className="history-table-wrap"),
            dcc.Download(id=ids.DOWNLOAD),
            dcc.Store(id=ids.HISTORY_SIGNATURE),
            dcc.Store(id=ids.HISTORY_TIMEZONE),
            dcc.Store(id=ids.CLEAR_DONE),
            confirm,
        ]),
    ], className="mb-3")


def group_key() -> html.Div:
    """The charts' colour key, one line of HTML for both (it wraps on a phone, where a Plotly legend eats the plot)."""
    return html.Div([html.Span([html.Span(className="history-swatch", style={"background": GROUP_COLORS[g]}),
                                KEY_NAMES[g]], className="history-key-item", title=GROUP_DEFINITIONS[g])
                     for g in (ALONE, LOADED, MONOLITH_GROUP)], id=ids.HISTORY_KEY, className="history-key small")


def info_icon(key: str, text: str) -> html.Span:
    """A focusable ⓘ that shows ``text`` on hover or focus (a tap on a phone) and to screen readers."""
    target = f"history-info-{key}"
    return html.Span([html.Span("i", id=target, className="history-info", tabIndex="0", title=text,
                                role="img", **{"aria-label": text}),
                      dbc.Tooltip(text, target=target, placement="top")])


def _count_text(count: int, errors: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'} succeeded, {errors:,} failed"


def summary_view(summary: Mapping, status: Mapping | None = None) -> html.Div:
    """The like-with-like headline: service alone, service under load, monolith, and the speedup (monolith p50 ÷
    alone p50), each with its definition; then how many requests succeeded and failed."""
    groups = summary.get("groups") or {}
    runtime = (status or {}).get("runtime")
    service_runtime = f"runtime: {clean_text(runtime, SHORT_MAX)}" if runtime else "runtime: not reported by the backend"

    def stat_card(key: str, group: int, title: str, css: str, lines: list) -> dbc.Col:
        g = groups.get(key) or {}
        return dbc.Col(dbc.Card(dbc.CardBody([
            html.Div([title, " ", info_icon(key, GROUP_DEFINITIONS[group] + " " + EXPLAIN["percentiles"])],
                     className=f"stat-title {css}"),
            html.Div([html.Span("p50 ", className="text-muted"), html.Strong(format_ms(g.get("p50")), id=f"{key}-p50"),
                      html.Span("  p95 ", className="text-muted ms-2"), html.Strong(format_ms(g.get("p95")))]),
            *[html.Div(line, className="text-muted small") for line in lines],
        ]), className="h-100"), xs=6, lg=3)

    alone, loaded, monolith = (groups.get(k) or {} for k in ("alone", "loaded", "monolith"))
    batches = (f"batch {loaded['batch_min']}–{loaded['batch_max']}" if loaded.get("batch_min") != loaded.get("batch_max")
               else f"batch {loaded.get('batch_max')}") if loaded.get("count") else "none yet"
    speed, speed_loaded = summary.get("speedup"), summary.get("speedup_loaded")
    service, mono = summary.get("service") or {}, summary.get("monolith") or {}
    return html.Div([
        dbc.Row([
            stat_card("alone", ALONE, "Service, alone", "service",
                      [f"{alone.get('count', 0):,} requests, batch 1, queue < 1 ms", service_runtime]),
            stat_card("loaded", LOADED, "Service, under load", "loaded",
                      [f"{loaded.get('count', 0):,} requests, {batches}", "shared a batch or waited in the queue"]),
            stat_card("monolith", MONOLITH_GROUP, "Monolith", "monolith",
                      [f"{monolith.get('count', 0):,} runs, fresh process each", "runtime: tensorflow"]),
            dbc.Col(dbc.Card(dbc.CardBody([
                html.Div(["Speedup ", info_icon("speedup", EXPLAIN["speedup"])], className="stat-title"),
                html.Div(_times(speed), className="stat-count speedup", id="history-speedup"),
                html.Div("monolith p50 ÷ service-alone p50" if speed else
                         ("run the monolith once to compare" if not monolith.get("count") else
                          "needs a service request that ran alone"), className="text-muted small"),
                html.Div(f"under load: {_times(speed_loaded)}", className="text-muted small") if speed_loaded else None,
            ]), className="h-100"), xs=6, lg=3),
        ], className="g-2 mb-2"),
        html.Div([
            "Service: ", html.Span(f"{service.get('count', 0):,}", id="service-count", className="fw-semibold"),
            f" request{'' if service.get('count') == 1 else 's'} succeeded, {service.get('errors', 0):,} failed. ",
            "Monolith: ", html.Span(f"{mono.get('count', 0):,}", id="monolith-count", className="fw-semibold"),
            f" run{'' if mono.get('count') == 1 else 's'} succeeded, {mono.get('errors', 0):,} failed.",
        ], className="small text-muted mb-3 history-counts"),
    ])


def _times(speed: float | None) -> str:
    if not speed:
        return "—"
    return f"{speed:,.0f}× faster" if speed >= 10 else f"{speed:.1f}× faster"


def history_table(rows: Sequence[Mapping], zone: tzinfo = timezone.utc) -> dbc.Table:
    """The most recent requests, newest first; on a phone only time, result, image and round trip (the rest
    from the md breakpoint up). Every latency header says what it measures."""
    wide = "d-none d-md-table-cell"
    headers = [(f"time ({zone_label(zone)})", None, ""), ("result", None, ""), ("image", None, ""),
               ("round trip", EXPLAIN["round_trip"] + " Monolith: " + EXPLAIN["monolith"], "text-end"),
               ("kind", "service: the warm backend; monolith: a fresh process per image", wide),
               ("backend", EXPLAIN["backend"], f"text-end {wide}"), ("queue", EXPLAIN["queue"], f"text-end {wide}"),
               ("batch", EXPLAIN["batch"], f"text-end {wide}"), ("top-1", None, wide)]
    header = html.Thead(html.Tr([html.Th(html.Abbr(h, title=t) if t else h, className=css) for h, t, css in headers]))
    body = []
    for r in rows:
        result = html.Span("ok", className="text-success") if r.get("ok") else \
            html.Span(clean_text(r.get("error_code"), SHORT_MAX) or "error", className="text-danger",
                      title=clean_text(r.get("error_message"), MESSAGE_MAX))
        top1 = f"{clean_text(r['top1_label'], SHORT_MAX)} ({r['top1_p']:.0%})" \
            if r.get("top1_label") and isinstance(r.get("top1_p"), (int, float)) else ""
        body.append(html.Tr([
            html.Td(format_local_time(r["ts"], zone), title=format_local_time(r["ts"], zone, with_date=True)),
            html.Td(result),
            # capped on the way out too: rows stored before names were capped stay small on screen
            html.Td(clean_text(r.get("image"), NAME_MAX), className="text-truncate history-image"),
            html.Td(format_ms(r.get("latency_ms")), className="text-end"),
            html.Td(r.get("kind"), className=wide),
            html.Td(format_ms(r.get("backend_total_ms")) if r.get("backend_total_ms") is not None else "",
                    className=f"text-end {wide}"),
            html.Td(format_ms(r.get("queue_ms")) if r.get("queue_ms") is not None else "", className=f"text-end {wide}"),
            html.Td(r.get("batch_size") or "", className=f"text-end {wide}"),
            html.Td(top1, className=wide)]))
    return dbc.Table([header, html.Tbody(body)], size="sm", hover=True, className="history-table mb-0")
