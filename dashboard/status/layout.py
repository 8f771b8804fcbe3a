"""The status feature's layout: the status card and the status bar its callback draws (reachable, ready, setup).

The bar says how deep the backend's queue is now, next to its capacity, each
labelled as such: ``in_flight`` (requests accepted and not yet answered) of
``queue_size`` for one backend; a broker's ``waiting`` of its ``queue_size``
and its workers' ``in_flight``. A backend that reports no depth shows only its
capacity, labelled "queue capacity". Everything in ``status`` came from the wire.

Two parts, because Dash rebuilds whatever a callback returns: the state
(badge, model, uptime, requests served) is redrawn on every check, while the
facts that explain themselves (runtime, batching, depth, capacity: a term with
a tooltip, ``common/glossary.py``) stay in the page and only their values and
visibility change, so a term keeps its focus and its tooltip across refreshes.
"""

from __future__ import annotations

from typing import Mapping

import dash_bootstrap_components as dbc
from dash import dcc, html

from ..common.components import explained
from ..common.formatting import format_duration
from ..common.glossary import STATUS_TERMS
from ..common.sanitize import MESSAGE_MAX, SHORT_MAX, clean_text
from ..settings import DashboardSettings
from . import ids

#: prefix of the status bar's explained terms' ids
TERM_ID = "status-term"


def status_section(settings: DashboardSettings) -> dbc.Card:
    return dbc.Card(dbc.CardBody([
        html.Div([html.Span("Checking the backend…", id=ids.STATUS),
                  *[explained_fact_slot(key) for key in EXPLAINED_FACTS]], className="status-bar"),
        dcc.Interval(id=ids.STATUS_INTERVAL, interval=settings.status_interval_ms, n_intervals=0),
        dcc.Store(id=ids.BACKEND_STORE),
    ], className="py-2"), className="mb-3")


#: the bar's facts that explain themselves, in order, and their labels (the glossary's STATUS_TERMS has their help)
EXPLAINED_FACTS = {"runtime": "runtime", "batching": "batching", "in_flight": "requests in flight",
                   "broker_waiting": "waiting at the broker", "broker_in_flight": "in flight at workers",
                   "capacity": "queue capacity"}
HIDDEN = {"display": "none"}
SHOWN: dict = {}


def explained_fact_slot(key: str) -> html.Span:
    """A fact that stays in the page: its explained label, and a value (and visibility) the callback sets."""
    return html.Span([explained(EXPLAINED_FACTS[key], STATUS_TERMS[key], term_id(key), "text-muted"), " ",
                      html.Strong(id=value_id(key))], id=slot_id(key), className="me-3 status-fact", style=HIDDEN)


def term_id(key: str) -> str:
    return f"{TERM_ID}-{key}"


def value_id(key: str) -> str:
    return f"status-value-{key}"


def slot_id(key: str) -> str:
    return f"status-fact-{key}"


def status_bar(status: Mapping) -> html.Span:
    """The state: reachable/ready badge, model, uptime, requests served and workers (redrawn on every check)."""
    if not status.get("reachable"):
        badge = dbc.Badge("Backend unreachable", color="danger", className="me-2")
        detail = status.get("error") or f"Nothing answers at {status.get('address')}."
        return html.Span([badge, html.Span(detail, className="text-danger"),
                          html.Span(" Retrying every few seconds; this page recovers by itself.", className="text-muted")])
    if not status.get("ready"):
        badge = dbc.Badge("Backend warming up", color="warning", text_color="dark", className="me-2")
        return html.Span([badge, html.Span(f"{status.get('model') or 'model'} is loading; uploads wait until it is ready.")])
    workers = status.get("workers")
    items = [fact("model", status.get("model")), fact("uptime", format_duration(status.get("uptime_s"))),
             fact("requests served", count(status.get("requests_served"))),
             fact("workers", (len(workers) if isinstance(workers, list) else count(workers)) or None)]
    return html.Span([dbc.Badge("Backend ready", color="success", className="me-2"), *[i for i in items if i is not None]])


#: what the bar says for the LiteRT executions that do not batch (model_backend/execution.py)
UNBATCHED = {"pool": "none: one image per interpreter, one interpreter per core",
             "adaptive": "none: a lone image on all cores, else one image per core"}


def batching_text(status: Mapping) -> str:
    """How the backend groups images: micro-batches (TensorFlow, LiteRT ``wide``) or not at all (``pool``/``adaptive``)."""
    execution = status.get("execution")
    if isinstance(execution, str) and execution in UNBATCHED:
        return UNBATCHED[execution]
    return f"up to {status.get('max_batch', '?')} images, waits ≤ {status.get('max_wait_ms', '?')} ms"


def explained_facts(status: Mapping) -> dict[str, str | None]:
    """The value of each explained fact (None: hidden), from a status: only a ready backend shows any."""
    values: dict[str, str | None] = dict.fromkeys(EXPLAINED_FACTS)
    if not (status.get("reachable") and status.get("ready")):
        return values
    runtime = status.get("runtime")
    if isinstance(runtime, str) and runtime:
        values["runtime"] = clean_text(runtime, SHORT_MAX)
    values["batching"] = batching_text(status)
    capacity, in_flight = count(status.get("queue_size")), count(status.get("in_flight"))
    if status.get("broker") is True:
        values["broker_waiting"] = of(count(status.get("waiting")), capacity)
        values["broker_in_flight"] = None if in_flight is None else str(in_flight)
    elif in_flight is not None:
        values["in_flight"] = of(in_flight, capacity)
    elif capacity is not None:
        values["capacity"] = str(capacity)
    return values


def runtime_help(status: Mapping) -> str:
    """The runtime's definition, then why the backend chose it (its ``runtime_reason``)."""
    reason = status.get("runtime_reason")
    reason = clean_text(reason, MESSAGE_MAX) if isinstance(reason, str) else ""
    return f"{STATUS_TERMS['runtime']} {reason}".strip()


def fact(label: str, value: object) -> html.Span | None:
    """One plain "label value" item of the state (None when the value is unknown)."""
    if value is None:
        return None
    return html.Span([html.Span(f"{label} ", className="text-muted"), html.Strong(str(value))],
                     className="me-3 status-fact")


def of(depth: int | None, capacity: int | None) -> str | None:
    """"3 of 256 max", or whichever of the two is known."""
    if depth is None:
        return None if capacity is None else f"? of {capacity} max"
    return f"{depth}" if capacity is None else f"{depth} of {capacity} max"


def count(value: object) -> int | None:
    """A count from the wire: a non-negative int, else None (never a bool, a float or text)."""
    return value if type(value) is int and value >= 0 else None
