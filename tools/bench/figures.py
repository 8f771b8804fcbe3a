"""The bench's figure, drawn with Plotly: latency and images/s against concurrency, from a results dict alone.

Left: p50 (solid) and p95 (dashed) latency of the service, the service on the
TensorFlow runtime and the HTTP API on a log axis, with the in-process request
as a dashed line. Right: images/s, with the pipeline limit as a dashed line.
Every series is labelled with the runtime that served it (``[litert]``,
``[tensorflow]``). The title's second line compares the monolith (TensorFlow,
a fresh process per request) with both services.

A PNG needs a Plotly static-image engine: kaleido (1.x, in the ``test`` extra)
driving a Chrome it finds on the machine (Debian's ``/usr/bin/chromium`` here;
``BROWSER_PATH`` points it elsewhere). It works offline: plotly.js comes from
the installed plotly package and MathJax is turned off, so nothing is fetched.
Where no engine runs, :func:`write_figure` writes a self-contained HTML file
(plotly.js inline) instead and says so.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from .report import model_label
from .stats import measured_limit, run_at

log = logging.getLogger("tools.bench")

PLOT_SIZE = (1100, 480)
COLORS = {"service": "rgb(31,119,180)", "service_tf": "rgb(44,160,44)", "http": "rgb(255,127,14)", "limit": "rgb(214,39,40)"}
SERIES = (("service", "service"), ("service_tf", "service"), ("http", "HTTP API"))
FIGURE_FORMATS = ("auto", "png", "html")
X_TITLE = "concurrency (requests in flight)"


class FigureExportError(RuntimeError):
    """The PNG could not be drawn (no kaleido, no Chrome, or the browser failed); the message says which."""


def runtime_tag(results: dict, section: str) -> str:
    """``[litert]``: the runtime that served a section, as the figure and the tables write it."""
    return f"[{(results.get(section) or {}).get('runtime') or '?'}]"


def monolith_caption(results: dict) -> str:
    """``monolith [tensorflow], fresh process per request: 5.63 s per image = 1100x the service [litert] p50 at c=1,
    230x the service [tensorflow]``, or why it is missing."""
    monolith = results.get("monolith") or {}
    if monolith.get("median_wall_ms") is None:
        return "monolith: " + (f"skipped ({monolith['skipped']})" if monolith.get("skipped") else "not measured")
    text = f"monolith {runtime_tag(results, 'monolith')}, fresh process per request: {monolith['median_wall_ms'] / 1000:.2f} s per image"
    ratios = []
    for section in ("service", "service_tf"):
        run = run_at(results.get(section), 1)
        if run and run.get("p50_ms"):
            ratios.append(f"{monolith['median_wall_ms'] / run['p50_ms']:.0f}x the service {runtime_tag(results, section)}")
    return text + (" = " + ", ".join(ratios) + " p50 at c=1" if ratios else "")


def bench_figure(results: dict):
    """Two panels side by side: latency (log scale) and throughput against concurrency."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    runs = {name: (results.get(name) or {}).get("runs", []) for name, _ in SERIES}
    levels = sorted({r["concurrency"] for series in runs.values() for r in series}) or [1]
    limit = results.get("limit") or {}
    request_ms, (limit_ips, limit_how) = limit.get("request_p50_ms"), measured_limit(limit)

    figure = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                           subplot_titles=("Latency vs concurrency (log scale)", "Throughput vs concurrency"))
    for name, base in SERIES:
        color, label = COLORS[name], f"{base} {runtime_tag(results, name)}"
        for key, dash, suffix in (("p50_ms", "solid", " p50"), ("p95_ms", "dash", " p95")):
            points = [r for r in runs[name] if r.get(key) is not None]
            if points:
                figure.add_trace(go.Scatter(
                    x=[str(r["concurrency"]) for r in points], y=[r[key] for r in points], name=label + suffix,
                    mode="lines+markers", line={"color": color, "dash": dash, "width": 3 if dash == "solid" else 2},
                    legend="legend"), row=1, col=1)
        points = [r for r in runs[name] if r.get("images_per_s") is not None]
        if points:
            figure.add_trace(go.Scatter(
                x=[str(r["concurrency"]) for r in points], y=[r["images_per_s"] for r in points], name=label,
                mode="lines+markers", line={"color": color, "width": 3}, legend="legend2"), row=1, col=2)
    if request_ms:
        _reference_line(figure, f"in-process request {runtime_tag(results, 'limit')} {request_ms:.1f} ms", request_ms, levels, col=1, legend="legend")
    if limit_ips:
        _reference_line(figure, f"pipeline limit ({limit_how}) {limit_ips:.1f} images/s", limit_ips, levels, col=2, legend="legend2")

    categories = [str(level) for level in levels]
    figure.update_xaxes(title_text=X_TITLE, type="category", categoryorder="array", categoryarray=categories,
                        showline=True, mirror=True, linecolor="#3c3c3c")
    figure.update_yaxes(showline=True, mirror=True, linecolor="#3c3c3c", gridcolor="#e1e1e1")
    latencies = [r[key] for series in runs.values() for r in series for key in ("p50_ms", "p95_ms") if r.get(key)]
    figure.update_yaxes(title_text="ms", type="log", tickvals=log_ticks(latencies + ([request_ms] if request_ms else [])), row=1, col=1)
    figure.update_yaxes(title_text="images/s", rangemode="tozero", row=1, col=2)
    figure.update_layout(
        width=PLOT_SIZE[0], height=PLOT_SIZE[1], template="plotly_white", margin={"l": 70, "r": 30, "t": 110, "b": 60},
        title={"text": f"warmserve bench: {model_label(results)}", "x": 0.5, "xanchor": "center", "font": {"size": 20},
               "subtitle": {"text": monolith_caption(results), "font": {"color": COLORS["limit"], "size": 15}}},
        legend={"x": 0.01, "y": 0.99, "xanchor": "left", "yanchor": "top", "bgcolor": "rgba(255,255,255,0.85)",
                "bordercolor": "#e1e1e1", "borderwidth": 1},
        legend2={"x": 0.99, "y": 0.01, "xanchor": "right", "yanchor": "bottom", "bgcolor": "rgba(255,255,255,0.85)",
                 "bordercolor": "#e1e1e1", "borderwidth": 1},
    )
    return figure


def log_ticks(values: list[float]) -> list[float]:
    """1-2-5 tick values covering ``values`` (a log axis labelled like 10, 20, 50, 100)."""
    positive = [v for v in values if v > 0] or [1.0]
    low, high = min(positive), max(positive)
    ticks, decade = [], 10 ** math.floor(math.log10(low))
    while decade <= high * 10:
        ticks += [m * decade for m in (1, 2, 5)]
        decade *= 10
    below = [t for t in ticks if t <= low]
    above = [t for t in ticks if t >= high]
    return [t for t in ticks if (below[-1] if below else low) <= t <= (above[0] if above else high)]


def _reference_line(figure, name: str, value: float, levels: list[int], col: int, legend: str) -> None:
    """A dashed red horizontal line across one panel, with its own legend entry."""
    import plotly.graph_objects as go

    figure.add_trace(go.Scatter(
        x=[str(levels[0]), str(levels[-1])], y=[value, value], name=name, mode="lines",
        line={"color": COLORS["limit"], "dash": "dash", "width": 2}, legend=legend, hoverinfo="name+y"), row=1, col=col)


def png_bytes(figure) -> bytes:
    """The figure as PNG through kaleido and a local Chrome, offline (no MathJax, plotly.js from the plotly package)."""
    try:
        import kaleido
    except ImportError:
        raise FigureExportError("kaleido is not installed (pip install -e '.[test]')") from None
    try:
        return kaleido.calc_fig_sync(
            figure.to_dict(), opts={"format": "png", "width": PLOT_SIZE[0], "height": PLOT_SIZE[1], "scale": 1},
            kopts={"mathjax": False},
        )
    except Exception as exc:  # noqa: BLE001 - kaleido's errors (no Chrome, a browser crash) have no common base
        raise FigureExportError(f"kaleido could not draw the PNG: {type(exc).__name__}: {exc}") from exc


def write_figure(results: dict, stem: Path, figure_format: str = "auto") -> Path:
    """``STEM.png`` (``png``), ``STEM.html`` (``html``), or the PNG with the HTML as a fallback (``auto``)."""
    if figure_format not in FIGURE_FORMATS:
        raise ValueError(f"Expected a figure format in {FIGURE_FORMATS}. Received: {figure_format!r}")
    figure = bench_figure(results)
    if figure_format in ("auto", "png"):
        try:
            path = stem.with_suffix(".png")
            path.write_bytes(png_bytes(figure))
            return path
        except FigureExportError as exc:
            if figure_format == "png":
                raise
            log.warning("%s; writing the figure as self-contained HTML instead", exc)
    path = stem.with_suffix(".html")
    figure.write_html(path, include_plotlyjs=True, full_html=True)
    return path
