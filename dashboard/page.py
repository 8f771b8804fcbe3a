"""The page: a header, then one section per feature (status, classify, monolith, history), top to bottom.

A new feature adds its section here and its callbacks in app.py.
"""

from __future__ import annotations

from typing import Sequence

import dash_bootstrap_components as dbc
from dash import html

from .api_panel.layout import api_panel_section
from .classify.layout import classify_section
from .history.layout import history_section
from .monolith.layout import monolith_section
from .settings import DashboardSettings
from .status.layout import status_section


def build_layout(settings: DashboardSettings, examples: Sequence[str]) -> html.Div:
    return dbc.Container([
        header(),
        status_section(settings),
        classify_section(settings, examples),
        monolith_section(),
        history_section(),
        api_panel_section(settings.auth_enabled),
    ], fluid="lg", className="py-3")


def header() -> html.Div:
    return html.Div([
        html.H1(["warmserve", html.Span(" image classifier", className="text-muted fw-light")], className="h3 mb-0"),
        html.Div("One warm model process behind ZeroMQ, compared with starting TensorFlow for every image.",
                 className="text-muted small"),
    ], className="mb-3")
