"""UI factories more than one feature draws with (dash-bootstrap-components): explained terms and the stage table.

An explained term is a label with a dotted underline that shows its definition
(``common/glossary.py``) in a tooltip on hover and on keyboard focus (it is a
tab stop); screen readers get the same text as its description: ``aria-describedby``
names a hidden copy (a description may come from a hidden element; the tooltip
exists only while shown, and the copy is not read twice when browsing).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import dash_bootstrap_components as dbc
from dash import html

from .formatting import format_ms

#: the tooltip's delay: quick enough to read while moving along a table, not flickering
TOOLTIP_DELAY = {"show": 150, "hide": 50}


def explained(label: str, help_text: str | None, term_id: str | None, class_name: str = "") -> object:
    """``label`` with its definition in a tooltip (hover or keyboard focus); just the label without help or id.

    Ids: the term is ``term_id``, its hidden description ``{term_id}-help``, its tooltip ``{term_id}-tip``.
    """
    if not help_text or not term_id:
        return html.Span(label, className=class_name or None)
    return html.Span([
        html.Span(label, id=term_id, tabIndex=0, className=f"term {class_name}".strip(),
                  **{"aria-describedby": f"{term_id}-help"}),
        html.Span(help_text, id=f"{term_id}-help", hidden=True),
        dbc.Tooltip(help_text, id=f"{term_id}-tip", target=term_id, placement="top", delay=TOOLTIP_DELAY,
                    className="term-tip"),
    ])


def stage_table(timings: Mapping, stages: Sequence[tuple[str, str]], *, total: tuple[str, float | None] | None = None,
                class_name: str = "", only_present: bool = False, help: Mapping[str, str] | None = None,
                id_prefix: str | None = None, total_key: str = "total") -> html.Table:
    """One row per (key, label) stage with its time, then an optional bold ``(label, ms)`` total row.

    With ``help`` (key -> definition) and ``id_prefix`` (unique on the page), each label is an explained term;
    the total row's definition is ``help[total_key]``.
    """
    help = help or {}

    def term(key: str, label: str) -> object:
        return explained(label, help.get(key), f"{id_prefix}-{key}" if id_prefix else None)

    rows = [html.Tr([html.Td(term(key, label)), html.Td(format_ms(timings.get(key)), className="text-end")],
                    className=f"stage-{key}")
            for key, label in stages if not only_present or key in timings]
    if total is not None:
        rows.append(html.Tr([html.Td(term(total_key, total[0])), html.Td(format_ms(total[1]), className="text-end")],
                            className=f"fw-semibold stage-{total_key}"))
    return html.Table(html.Tbody(rows), className=f"table table-sm stage-table mt-2 mb-0 {class_name}".strip())
