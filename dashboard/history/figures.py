"""The latency history chart: per-request latency over time, service and monolith on one log-scaled axis."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import plotly.graph_objects as go

from ..common.figures import FONT, empty_figure, hover_number, utc
from ..common.formatting import format_ms
from ..common.sanitize import HOVER_NAME_MAX, plotly_text

SERVICE_COLOR = "#2563eb"
MONOLITH_COLOR = "#dc2626"
MIN_SPAN_S = 60


def history_figure(service: Sequence[Mapping], monolith: Sequence[Mapping], summary: Mapping | None = None) -> go.Figure:
    """Per-request latency over time, service and monolith on one log-scaled axis, with their medians dashed."""
    if not service and not monolith:
        return empty_figure("No requests yet: drop an image or click an example above.")
    fig = go.Figure()
    for rows, name, color, mode, size in (
        (service, "service (warm backend)", SERVICE_COLOR, "lines+markers", 6),
        (monolith, "monolith (fresh process)", MONOLITH_COLOR, "markers", 11),
    ):
        if not rows:
            continue
        fig.add_trace(go.Scatter(
            x=[utc(r["ts"]) for r in rows], y=[r["latency_ms"] for r in rows], name=name,
            mode=mode, line={"color": color, "width": 1}, marker={"color": color, "size": size},
            customdata=[[plotly_text(r.get("image"), HOVER_NAME_MAX), plotly_text(r.get("top1_label"), HOVER_NAME_MAX),
                         hover_number(r.get("batch_size"))] for r in rows],
            hovertemplate="%{y:.1f} ms<br>%{customdata[0]}<br>%{customdata[1]}<br>batch %{customdata[2]}<extra>" + name + "</extra>",
        ))
    times = [r["ts"] for r in (*service, *monolith)]
    start, end = min(times), max(times)
    if end - start < MIN_SPAN_S:  # a few points: show a readable stretch of time, not milliseconds
        start, end = start - MIN_SPAN_S / 2, end + MIN_SPAN_S / 2
    x_range = [utc(start), utc(end)]
    for kind, color in (("service", SERVICE_COLOR), ("monolith", MONOLITH_COLOR)):
        p50 = (summary or {}).get(kind, {}).get("p50")
        if p50:
            # A trace, not a shape: plotly's autorange mishandles shapes on log axes.
            fig.add_trace(go.Scatter(x=x_range, y=[p50, p50], mode="lines", name=f"{kind} p50 {format_ms(p50)}",
                                     line={"color": color, "dash": "dash", "width": 1}, hoverinfo="skip"))
    fig.update_layout(
        height=380, margin={"l": 10, "r": 10, "t": 10, "b": 10}, font=FONT, plot_bgcolor="white", paper_bgcolor="white",
        legend={"orientation": "h", "yanchor": "top", "y": -0.22, "xanchor": "left", "x": 0.0},
        yaxis={"type": "log", "title": {"text": "latency (ms, log scale)"}, "gridcolor": "#e5e7eb", "dtick": 1,
               "exponentformat": "none", "separatethousands": True,
               "range": _log_range([r["latency_ms"] for r in (*service, *monolith)])},
        xaxis={"gridcolor": "#f3f4f6", "range": x_range, "title": {"text": "time (UTC)"}},
    )
    return fig


def _log_range(values: list[float]) -> list[float]:
    """A log10 axis range with room around the points, at least one decade tall."""
    positive = [v for v in values if v and v > 0] or [1.0]
    low, high = math.log10(min(positive)), math.log10(max(positive))
    if high - low < 1:
        middle = (high + low) / 2
        low, high = middle - 0.5, middle + 0.5
    return [low - 0.2, high + 0.2]
