"""The top-k bar chart on each result card (a plain function of the predictions; tested without a browser).

A result whose top-1 probability is below the dashboard's ``unsure_below``
setting is drawn in muted greys (:func:`is_unsure`), so a 14% guess does not
look like an 80% answer.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import plotly.graph_objects as go

from ..common.figures import FONT, empty_figure, hover_number
from ..common.sanitize import SHORT_MAX, clean_text, plotly_text

BAR_COLOR = "#2563eb"
TOP_BAR_COLOR = "#1d4ed8"
#: an unsure result's bars: slate greys (the top bar still darker than the rest)
UNSURE_BAR_COLOR = "#94a3b8"
UNSURE_TOP_BAR_COLOR = "#64748b"


def is_unsure(top_p: float | None, unsure_below: float) -> bool:
    """True when the top-1 probability is strictly below the threshold (a threshold of 0 marks nothing)."""
    return top_p is not None and float(top_p) < unsure_below


def top_k_figure(predictions: Sequence[Mapping], unsure: bool = False) -> go.Figure:
    """Horizontal bars of class probabilities, most probable on top, with the percentage written on each bar.

    ``unsure`` draws them muted (see :func:`is_unsure`).
    """
    if not predictions:
        return empty_figure("No predictions", height=180)
    ordered = sorted(predictions, key=lambda p: p["p"], reverse=True)
    labels = _unique([plotly_text(_wrap_label(clean_text(p["label"], SHORT_MAX))) for p in ordered],
                     [p.get("index") for p in ordered])
    probs = [float(p["p"]) for p in ordered]
    top_color, color = (UNSURE_TOP_BAR_COLOR, UNSURE_BAR_COLOR) if unsure else (TOP_BAR_COLOR, BAR_COLOR)
    colors = [top_color if i == 0 else color for i in range(len(ordered))]
    opacity = [1.0 if i == 0 else 0.55 for i in range(len(ordered))]
    fig = go.Figure(
        go.Bar(
            x=probs, y=labels, orientation="h", marker={"color": colors, "opacity": opacity},
            text=[f"{p:.1%}" for p in probs], textposition="outside", cliponaxis=False,
            customdata=[[hover_number(p.get("index")), plotly_text(p["label"], SHORT_MAX)] for p in ordered],
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


def _wrap_label(label: str, width: int = 28) -> str:
    """Long ImageNet names ("Granny Smith, ...") are cut to stay readable next to the bars."""
    return label if len(label) <= width else label[: width - 1] + "…"


def _unique(labels: list[str], indices: list) -> list[str]:
    """Bars on a categorical axis merge when names repeat (ImageNet has two "crane"s): add the class index."""
    return [f"{label} ({index})" if labels.count(label) > 1 else label for label, index in zip(labels, indices, strict=True)]
