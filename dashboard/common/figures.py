"""What every Plotly figure of the dashboard shares: the font, the blank figure that says why, and value helpers.

Figures are built by plain functions from plain data (tested without a browser):
``classify/figures.py`` draws the top-k bars, ``history/figures.py`` the latency
history. Plotly renders a subset of HTML in hover text and axis labels, so every
string that came from a user or a peer (image names, class labels) goes through
``sanitize.plotly_text`` (cleaned, capped, ``<``, ``>`` and ``&`` escaped) on its way into a figure.
"""

from __future__ import annotations

from datetime import datetime, timezone

import plotly.graph_objects as go

FONT = {"family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", "size": 13}


def empty_figure(message: str, height: int = 260) -> go.Figure:
    """A blank figure that says why it is blank."""
    fig = go.Figure()
    fig.update_layout(
        height=height, margin={"l": 10, "r": 10, "t": 10, "b": 10}, font=FONT,
        xaxis={"visible": False}, yaxis={"visible": False}, plot_bgcolor="white", paper_bgcolor="white",
        annotations=[{"text": message, "showarrow": False, "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5,
                      "font": {"size": 14, "color": "#6b7280"}}],
    )
    return fig


def hover_number(value: object) -> int | str:
    """A number shown in hover text (class index, batch size): an int, or "" for anything else."""
    return value if isinstance(value, int) and not isinstance(value, bool) else ""


def utc(ts: float) -> datetime:
    """Plotly draws a date's wall-clock part; use UTC like the history table and the CSV."""
    return datetime.fromtimestamp(ts, tz=timezone.utc).replace(tzinfo=None)
