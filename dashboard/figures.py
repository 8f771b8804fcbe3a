"""Plotly figures, built by plain functions from plain data (tested without a browser).

Plotly renders a subset of HTML in hover text and axis labels, so every string
that came from a user or a peer (image names, class labels) goes through
``sanitize.plotly_text`` (cleaned, capped, ``<``, ``>`` and ``&`` escaped) on its way into a figure.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Mapping, Sequence

import plotly.graph_objects as go

from .sanitize import HOVER_NAME_MAX, SHORT_MAX, clean_text, plotly_text

SERVICE_COLOR = "#2563eb"
MONOLITH_COLOR = "#dc2626"
BAR_COLOR = "#2563eb"
TOP_BAR_COLOR = "#1d4ed8"
MIN_SPAN_S = 60
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


def top_k_figure(predictions: Sequence[Mapping]) -> go.Figure:
    """Horizontal bars of class probabilities, most probable on top, with the percentage written on each bar."""
    if not predictions:
        return empty_figure("No predictions", height=180)
    ordered = sorted(predictions, key=lambda p: p["p"], reverse=True)
    labels = _unique([plotly_text(_wrap_label(clean_text(p["label"], SHORT_MAX))) for p in ordered],
                     [p.get("index") for p in ordered])
    probs = [float(p["p"]) for p in ordered]
    colors = [TOP_BAR_COLOR if i == 0 else BAR_COLOR for i in range(len(ordered))]
    opacity = [1.0 if i == 0 else 0.55 for i in range(len(ordered))]
    fig = go.Figure(
        go.Bar(
            x=probs, y=labels, orientation="h", marker={"color": colors, "opacity": opacity},
            text=[f"{p:.1%}" for p in probs], textposition="outside", cliponaxis=False,
            customdata=[[_index(p.get("index")), plotly_text(p["label"], SHORT_MAX)] for p in ordered],
            hovertemplate="%{customdata[1]} (class %{customdata[0]})<br>p = %{x:.3f}<extra></extra>",
        )
    )
    fig.update_layout(
        height=40 + 32 * len(ordered), margin={"l": 8, "r": 48, "t": 8, "b": 8}, font=FONT,
        plot_bgcolor="white", paper_bgcolor="white", bargap=0.3, showlegend=False,
        xaxis={"range": [0, 1.0], "visible": False, "fixedrange": True},
        yaxis={"autorange": "reversed", "automargin": True, "fixedrange": True, "ticksuffix": "  "},
    )
    return fig


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
            x=[_utc(r["ts"]) for r in rows], y=[r["latency_ms"] for r in rows], name=name,
            mode=mode, line={"color": color, "width": 1}, marker={"color": color, "size": size},
            customdata=[[plotly_text(r.get("image"), HOVER_NAME_MAX), plotly_text(r.get("top1_label"), HOVER_NAME_MAX),
                         _index(r.get("batch_size"))] for r in rows],
            hovertemplate="%{y:.1f} ms<br>%{customdata[0]}<br>%{customdata[1]}<br>batch %{customdata[2]}<extra>" + name + "</extra>",
        ))
    times = [r["ts"] for r in (*service, *monolith)]
    start, end = min(times), max(times)
    if end - start < MIN_SPAN_S:  # a few points: show a readable stretch of time, not milliseconds
        start, end = start - MIN_SPAN_S / 2, end + MIN_SPAN_S / 2
    x_range = [_utc(start), _utc(end)]
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


def format_ms(ms: float | None) -> str:
    """Human milliseconds: '0.42 ms', '23.1 ms', '812 ms', '3.48 s'."""
    if ms is None:
        return "—"
    if ms >= 1000:
        return f"{ms / 1000:.2f} s"
    if ms >= 100:
        return f"{ms:.0f} ms"
    if ms >= 10:
        return f"{ms:.1f} ms"
    return f"{ms:.2f} ms"


def _index(value: object) -> int | str:
    """A number shown in hover text (class index, batch size): an int, or "" for anything else."""
    return value if isinstance(value, int) and not isinstance(value, bool) else ""


def _wrap_label(label: str, width: int = 28) -> str:
    """Long ImageNet names ("Granny Smith, ...") are cut to stay readable next to the bars."""
    return label if len(label) <= width else label[: width - 1] + "…"


def _unique(labels: list[str], indices: list) -> list[str]:
    """Bars on a categorical axis merge when names repeat (ImageNet has two "crane"s): add the class index."""
    return [f"{label} ({index})" if labels.count(label) > 1 else label for label, index in zip(labels, indices, strict=True)]


def _log_range(values: list[float]) -> list[float]:
    """A log10 axis range with room around the points, at least one decade tall."""
    positive = [v for v in values if v and v > 0] or [1.0]
    low, high = math.log10(min(positive)), math.log10(max(positive))
    if high - low < 1:
        middle = (high + low) / 2
        low, high = middle - 0.5, middle + 0.5
    return [low - 0.2, high + 0.2]


def _utc(ts: float) -> datetime:
    """Plotly draws a date's wall-clock part; use UTC like the history table and the CSV."""
    return datetime.fromtimestamp(ts, tz=timezone.utc).replace(tzinfo=None)
