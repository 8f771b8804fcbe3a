"""The status feature's layout: the status card and the status bar its callback draws (reachable, ready, setup)."""

from __future__ import annotations

from typing import Mapping

import dash_bootstrap_components as dbc
from dash import dcc, html

from ..common.formatting import format_duration
from ..settings import DashboardSettings
from . import ids


def status_section(settings: DashboardSettings) -> dbc.Card:
    return dbc.Card(dbc.CardBody([
        html.Div("Checking the backend…", id=ids.STATUS, className="status-bar"),
        dcc.Interval(id=ids.STATUS_INTERVAL, interval=settings.status_interval_ms, n_intervals=0),
        dcc.Store(id=ids.BACKEND_STORE),
    ], className="py-2"), className="mb-3")


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
