"""What every Plotly figure of the dashboard shares: the font, the blank figure that says why, and value helpers.

Figures are built by plain functions from plain data (tested without a browser):
``classify/figures.py`` draws the top-k bars, ``history/figures.py`` the latency
history. Plotly renders a subset of HTML in hover text and axis labels, so every
string that came from a user or a peer (image names, class labels) goes through
``sanitize.plotly_text`` (cleaned, capped, ``<``, ``>`` and ``&`` escaped) on its way into a figure.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone, tzinfo

import numpy as np
import plotly.graph_objects as go

from .formatting import format_ms_tick

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


#: Graph config for charts on small screens too: no mode bar over the plot (drag still zooms, double-click resets)
GRAPH_CONFIG = {"displaylogo": False, "displayModeBar": False, "responsive": True}


def log_range(values, min_decades: float = 1.0, pad: float = 0.15) -> list[float]:
    """A log10 axis range around the positive ``values`` with room for the markers, at least ``min_decades`` tall."""
    positive = [float(v) for v in values if v is not None and v > 0] or [1.0]
    low, high = math.log10(min(positive)), math.log10(max(positive))
    if high - low < min_decades:
        middle = (high + low) / 2
        low, high = middle - min_decades / 2, middle + min_decades / 2
    return [low - pad, high + pad]


def log_ticks(axis_range: list[float], max_ticks: int = 12) -> tuple[list[float], list[str]]:
    """Explicit 1-2-5 ticks (ms, labelled '2 ms', '500 ms', '1 s') inside a log10 ``axis_range``.

    Plotly's own log ticks show one label per decade at best ("100" alone for a few points); these give 2 to
    ``max_ticks`` labels: 1-2-5 per decade, then 1-3, then 1 per decade, then every other decade.
    """
    low, high = axis_range
    for mantissas, decade_step in (((1, 2, 5), 1), ((1, 3), 1), ((1,), 1), ((1,), 2), ((1,), 3)):
        values = [m * 10.0 ** d for d in range(math.floor(low), math.ceil(high) + 1, decade_step) for m in mantissas]
        inside = [v for v in values if low <= math.log10(v) <= high]
        if len(inside) <= max_ticks:
            break
    return inside, [format_ms_tick(v) for v in inside]


def local_epoch_ms(ts, zone: tzinfo) -> np.ndarray:
    """Unix times (s) as the epoch milliseconds Plotly draws as ``zone``'s wall-clock time.

    Plotly date axes have no time zones: they draw a number as UTC. Shifting each time by its zone's offset
    at that moment (summer time included) makes the axis read in the viewer's time zone.
    """
    ts = np.asarray(ts, dtype=float)
    if ts.size == 0:
        return ts
    if zone is timezone.utc:
        offsets = np.zeros_like(ts)
    else:  # the offset changes at most twice a year: compute it once per distinct hour
        hours = np.floor(ts / 3600.0)
        unique, inverse = np.unique(hours, return_inverse=True)
        offsets = np.array([datetime.fromtimestamp(h * 3600.0, tz=zone).utcoffset().total_seconds() for h in unique])[inverse]
    return np.round((ts + offsets) * 1000.0)


def utc(ts: float) -> datetime:
    """Plotly draws a date's wall-clock part; use UTC like the history table and the CSV."""
    return datetime.fromtimestamp(ts, tz=timezone.utc).replace(tzinfo=None)
