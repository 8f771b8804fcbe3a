"""The latency history's two charts, built from plain data (no database): what a user reads from 1 to 100,000 requests.

- :func:`distribution_figure`: one column per group (service alone, service under load, monolith; see
  stats.py) on one log latency axis with 1-2-5 ticks: a box (p5, p25, p50, p75, p95, from the store's exact
  percentiles) once a group has 5 requests, and every request as a point while it has at most
  :data:`STRIP_MAX`. It never carries more than 3 x STRIP_MAX points, however long the history.
- :func:`time_figure`: round trip over time in the viewer's time zone, markers only (no line joins two requests
  across an idle gap), every request while the view holds at most :data:`RAW_MAX`; beyond that, per-time-bucket
  p50 and p95 lines (:class:`stats.Buckets`) that break wherever a bucket is empty. Long idle gaps are cut out
  of the time axis (Plotly rangebreaks, :func:`stats.idle_breaks`), so a few requests hours apart still get room.

Both charts fit a 390 px phone: no Plotly legend (the colour key is one line of HTML above them, layout.group_key),
at most :data:`MAX_TICKS` latency ticks, and short column labels (each column's p50 is in the summary cards).

Every string that came from a user or a peer goes through ``sanitize.plotly_text`` on its way in.
"""

from __future__ import annotations

from datetime import datetime, timezone, tzinfo
from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from ..common.figures import FONT, empty_figure, hover_number, local_epoch_ms, log_range, log_ticks
from ..common.formatting import format_ms, zone_label
from ..common.sanitize import HOVER_NAME_MAX, plotly_text
from .stats import ALONE, GROUPS, LOADED, MONOLITH_GROUP, Buckets

GROUP_COLORS = {ALONE: "#2563eb", LOADED: "#7c3aed", MONOLITH_GROUP: "#dc2626"}
GROUP_NAMES = {ALONE: "service, alone", LOADED: "service, under load", MONOLITH_GROUP: "monolith"}
#: the groups' short names in the key above the charts (layout.group_key)
KEY_NAMES = {ALONE: "alone", LOADED: "under load", MONOLITH_GROUP: "monolith"}
#: the distribution view draws a group's requests one by one up to this many, and a box from this many
STRIP_MAX = 300
BOX_MIN = 5
#: the time view draws requests one by one up to this many in view, then per-bucket percentiles
RAW_MAX = 1000
#: the time view aims for about this many time buckets once it aggregates
BUCKETS_TARGET = 120
EMPTY_TEXT = "No requests yet: drop an image or click an example above."
HEIGHT = 360
#: at most this many latency ticks: about 30 px each in the plot area the time axis leaves
MAX_TICKS = (HEIGHT - 80) // 30


def _base_layout(fig: go.Figure, y_range: list[float], **layout) -> None:
    tickvals, ticktext = log_ticks(y_range, MAX_TICKS)
    fig.update_layout(
        height=HEIGHT, margin={"l": 8, "r": 8, "t": 12, "b": 8}, font=FONT, plot_bgcolor="white",
        paper_bgcolor="white", hovermode="closest",
        showlegend=False,  # the key is one line of HTML above the charts (layout.group_key): it wraps on a phone
        yaxis={"type": "log", "range": y_range, "tickmode": "array", "tickvals": tickvals, "ticktext": ticktext,
               "title": {"text": "round trip (log scale)", "standoff": 4}, "gridcolor": "#e5e7eb",
               "automargin": True, "zeroline": False},
        **layout,
    )


def distribution_figure(groups: Mapping[int, Mapping], strips: Mapping[int, Sequence[float]]) -> go.Figure:
    """Per group: a box of its percentiles (``groups[g]``: count, p5, p25, p50, p75, p95, min, max) and its
    requests as points (``strips[g]``, drawn while the group has at most :data:`STRIP_MAX`)."""
    shown = [g for g in GROUPS if (groups.get(g) or {}).get("count")]
    if not shown:
        return empty_figure(EMPTY_TEXT, height=HEIGHT)
    fig = go.Figure()
    golden = 0.6180339887
    for position, group in enumerate(shown):
        stats, color, name = groups[group], GROUP_COLORS[group], GROUP_NAMES[group]
        if stats["count"] >= BOX_MIN:
            fig.add_trace(go.Box(
                x=[position], q1=[stats["p25"]], median=[stats["p50"]], q3=[stats["p75"]],
                lowerfence=[stats["p5"]], upperfence=[stats["p95"]], name=name, marker={"color": color},
                line={"width": 1.5}, fillcolor="rgba(0,0,0,0)", width=0.5, boxpoints=False, showlegend=False,
                hoverinfo="skip"))
        values = list(strips.get(group) or [])
        if values and stats["count"] <= STRIP_MAX:
            jitter = [((i * golden) % 1.0 - 0.5) * 0.36 for i in range(len(values))]
            fig.add_trace(go.Scatter(
                x=[position + j for j in jitter], y=np.round(values, 3), mode="markers", name=name, showlegend=False,
                marker={"color": color, "size": 7, "opacity": 0.6, "line": {"width": 0}}, cliponaxis=False,
                hovertemplate="%{y:.3~f} ms<extra>" + name + "</extra>"))
        # one invisible point per group carries the group's hover: its percentiles, in words
        hover = (f"<b>{name}</b><br>{stats['count']:,} requests<br>p50 {format_ms(stats['p50'])}"
                 + (f"<br>p25–p75 {format_ms(stats['p25'])} – {format_ms(stats['p75'])}"
                    f"<br>p5–p95 {format_ms(stats['p5'])} – {format_ms(stats['p95'])}" if stats["count"] >= BOX_MIN else "")
                 + f"<br>min {format_ms(stats.get('min'))}, max {format_ms(stats.get('max'))}")
        fig.add_trace(go.Scatter(x=[position], y=[stats["p50"]], mode="markers", showlegend=False, name=name,
                                 marker={"color": color, "size": 14, "symbol": "line-ew-open", "line": {"width": 3}},
                                 hovertemplate=hover + "<extra></extra>", cliponaxis=False))
    # the p50 of each column is in the summary cards above and in its hover: the label stays two short lines wide
    labels = [f"<b>{GROUP_NAMES[g].replace(', ', ',<br>')}</b><br>n = {groups[g]['count']:,}" for g in shown]
    values = [groups[g][key] for g in shown for key in ("p5", "p95", "min", "max") if groups[g].get(key)]
    _base_layout(fig, log_range(values),
                 xaxis={"tickmode": "array", "tickvals": list(range(len(shown))), "ticktext": labels,
                        "range": [-0.5, len(shown) - 0.5], "tickangle": 0, "automargin": True, "fixedrange": True,
                        "showgrid": False, "zeroline": False})
    return fig


def time_figure(points: Sequence[Mapping] | None, buckets: Mapping[int, Buckets] | None, window: tuple[float, float],
                zone: tzinfo, breaks: Sequence[tuple[float, float]] = ()) -> go.Figure:
    """Round trip over ``window`` (Unix s): ``points`` (store.points rows, one marker each) or, when there were too
    many, ``buckets`` per group (p50 line, p95 dotted line, broken at empty buckets). Times in ``zone``;
    ``breaks`` (start, end) Unix times are cut out of the axis (idle gaps, stats.idle_breaks)."""
    fig = go.Figure()
    values: list[float] = []
    if points:
        for group in GROUPS:
            rows = [r for r in points if r.get("grp") == group]
            if rows:
                fig.add_trace(_point_trace(group, rows, zone))
                values += [r["latency_ms"] for r in rows]
    elif buckets:
        for group in GROUPS:
            b = buckets.get(group)
            if b is not None and b.count.size:
                fig.add_traces(_bucket_traces(group, b, zone))
                values += [*b.p50.tolist(), *b.max.tolist()]
    if not fig.data:
        return empty_figure(EMPTY_TEXT, height=HEIGHT)
    start, end = local_epoch_ms(np.array(window), zone)
    _base_layout(fig, log_range(values),
                 xaxis={"type": "date", "range": [start, end], "gridcolor": "#f3f4f6", "tickangle": 0, "nticks": 4,
                        "automargin": True, "title": {"text": f"time ({zone_label(zone)})", "standoff": 4},
                        "rangebreaks": [{"bounds": [_axis_date(a, zone), _axis_date(b, zone)]} for a, b in breaks]})
    return fig


def _axis_date(ts: float, zone: tzinfo) -> str:
    """A Unix time as the date string a Plotly date axis reads in ``zone`` (rangebreak bounds take dates)."""
    local_ms = float(local_epoch_ms([ts], zone)[0])
    return datetime.fromtimestamp(local_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _point_trace(group: int, rows: Sequence[Mapping], zone: tzinfo) -> go.Scatter:
    """One marker per request, its hover saying what each number is."""
    name, monolith = GROUP_NAMES[group], group == MONOLITH_GROUP

    def ms(value) -> str:
        return format_ms(value) if isinstance(value, (int, float)) else "—"

    if monolith:
        detail = [[ms(r.get("import_ms")), ms(r.get("model_load_ms")), ms(r.get("preprocess_ms")),
                   ms(r.get("inference_ms"))] for r in rows]
        stages = ("<br>import TensorFlow %{customdata[3]}, load model %{customdata[4]}"
                  "<br>preprocess %{customdata[5]}, inference %{customdata[6]}")
    else:
        detail = [[ms(r.get("backend_total_ms")), ms(r.get("queue_ms")), ms(r.get("decode_ms")), ms(r.get("preprocess_ms")),
                   ms(r.get("inference_ms")), hover_number(r.get("batch_size"))] for r in rows]
        stages = ("<br>backend total %{customdata[3]}: queue %{customdata[4]}, decode %{customdata[5]},"
                  "<br>preprocess %{customdata[6]}, inference %{customdata[7]} (batch of %{customdata[8]})")
    customdata = [[plotly_text(r.get("image"), HOVER_NAME_MAX), plotly_text(r.get("top1_label"), HOVER_NAME_MAX),
                   format_ms(r["latency_ms"]), *d] for r, d in zip(rows, detail)]
    label = "wall clock" if monolith else "round trip"
    return go.Scatter(
        x=local_epoch_ms([r["ts"] for r in rows], zone), y=np.round([r["latency_ms"] for r in rows], 3), name=name,
        mode="markers", cliponaxis=False,
        marker={"color": GROUP_COLORS[group], "size": 11 if monolith else 7, "opacity": 0.75, "line": {"width": 0}},
        customdata=customdata,
        hovertemplate=f"<b>%{{customdata[2]}}</b> {label}, %{{x|%H:%M:%S}}<br>%{{customdata[0]}} → %{{customdata[1]}}"
                      + stages + f"<extra>{name}</extra>")


def bucket_label(seconds: float) -> str:
    """A bucket's width in words: '30 s', '2 min', '1 h', '1 d'."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"


def _bucket_traces(group: int, b: Buckets, zone: tzinfo) -> list[go.Scatter]:
    """p50 (solid, with markers) and p95 (dotted) per bucket, a break (None) wherever a bucket is empty."""
    name, color = GROUP_NAMES[group], GROUP_COLORS[group]
    middle = b.start + b.width / 2
    x = local_epoch_ms(middle, zone)
    gap = np.concatenate([[False], np.diff(b.start) > b.width * 1.5])  # an empty bucket before this one

    def broken(values: np.ndarray) -> tuple[list, list]:
        xs, ys = [], []
        for xi, yi, cut in zip(x.tolist(), np.round(values, 3).tolist(), gap.tolist()):
            if cut:
                xs.append(None)
                ys.append(None)
            xs.append(xi)
            ys.append(yi)
        return xs, ys

    def per_bucket(values) -> list:
        out = []
        for value, cut in zip(values, gap.tolist()):
            if cut:
                out.append(None)
            out.append(value)
        return out

    width = bucket_label(b.width)
    custom = per_bucket([[int(n), format_ms(p50), format_ms(p95), format_ms(top)]
                         for n, p50, p95, top in zip(b.count.tolist(), b.p50.tolist(), b.p95.tolist(), b.max.tolist())])
    x50, y50 = broken(b.p50)
    x95, y95 = broken(b.p95)
    hover = ("<b>p50 %{customdata[1]}</b>, p95 %{customdata[2]}, max %{customdata[3]}<br>%{customdata[0]:,} requests in the "
             + width + " from %{x|%H:%M}<extra>" + name + "</extra>")
    return [
        go.Scatter(x=x50, y=y50, name=f"{name} p50", mode="lines+markers", connectgaps=False, cliponaxis=False,
                   line={"color": color, "width": 2}, marker={"color": color, "size": 4}, customdata=custom,
                   hovertemplate=hover, legendgroup=name),
        # the note under the chart says solid p50, dotted p95
        go.Scatter(x=x95, y=y95, name=f"{name} p95", mode="lines", connectgaps=False, cliponaxis=False,
                   line={"color": color, "width": 1, "dash": "dot"}, hoverinfo="skip", legendgroup=name),
    ]
