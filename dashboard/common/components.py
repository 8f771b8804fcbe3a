"""UI factories more than one feature draws with (dash-bootstrap-components): the stage-timings table."""

from __future__ import annotations

from typing import Mapping, Sequence

from dash import html

from .formatting import format_ms


def stage_table(timings: Mapping, stages: Sequence[tuple[str, str]], *, total: tuple[str, float | None] | None = None,
                class_name: str = "", only_present: bool = False) -> html.Table:
    """One row per (key, label) stage with its time, then an optional bold ``(label, ms)`` total row."""
    rows = [html.Tr([html.Td(label), html.Td(format_ms(timings.get(key)), className="text-end")])
            for key, label in stages if not only_present or key in timings]
    if total is not None:
        rows.append(html.Tr([html.Td(total[0]), html.Td(format_ms(total[1]), className="text-end")],
                            className="fw-semibold"))
    return html.Table(html.Tbody(rows), className=f"table table-sm stage-table mt-2 mb-0 {class_name}".strip())
