"""What each callback does, as plain functions of (settings, client, store, inputs): tests call these directly.

The callbacks in callbacks.py only unpack Dash's inputs, call one of these and
return its result; nothing here needs a browser or a Dash request context.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Sequence

import dash_bootstrap_components as dbc
from dash import html

from . import components
from .classify import Outcome, Upload, classify_many, kept_upload, record_outcomes, uploads_from_browser
from .figures import history_figure
from .history import MONOLITH, SERVICE, HistoryStore, monolith_record
from .layout import list_examples
from .monolith_runner import run_monolith_on_file
from .settings import DashboardSettings
from .status import backend_status

log = logging.getLogger(__name__)

RECENT_ROWS = 12


def classify_drop(settings: DashboardSettings, client, store: HistoryStore, contents: Sequence[str] | None,
                  filenames: Sequence[str] | None) -> list[Outcome]:
    """Files dropped on the upload zone: refusals first, then every classified or failed image, in drop order."""
    uploads, refused = uploads_from_browser(contents, filenames, settings.max_files)
    outcomes = classify_many(client, uploads, top_k=settings.top_k, max_bytes=settings.max_image_bytes, store=store,
                             uploads_dir=settings.uploads_dir)
    if refused:
        record_outcomes(store, refused)
    return refused + outcomes


def classify_example(settings: DashboardSettings, client, store: HistoryStore, name: str) -> list[Outcome]:
    """One of the gallery photos (only names that are really in assets/examples/)."""
    if name not in list_examples(settings.assets_dir):
        return []
    data = (settings.assets_dir / "examples" / name).read_bytes()
    return classify_many(client, [Upload(name, data, "example")], top_k=settings.top_k,
                         max_bytes=settings.max_image_bytes, store=store, uploads_dir=settings.uploads_dir)


def results_view(outcomes: Sequence[Outcome]) -> tuple[list, object, list[dict], str | None]:
    """(result cards, refusals alert, monolith dropdown options, the option selected)."""
    cards = [components.result_card(o) for o in outcomes if o.ok]
    options = [{"label": o.name, "value": o.sha256} for o in outcomes if o.ok]
    unique = list({opt["value"]: opt for opt in options}.values())
    return cards, components.refusals_alert(outcomes), unique, (unique[0]["value"] if unique else None)


def status_view(settings: DashboardSettings, client) -> tuple[html.Div, dict]:
    """(status bar, status dict for the BACKEND_STORE)."""
    status = backend_status(client, settings.backend)
    return components.status_bar(status), status


def history_view(store: HistoryStore) -> tuple[object, object, object, list]:
    """(latency figure, summary cards, recent-requests table, signature)."""
    summary = store.summary()
    figure = history_figure(store.latencies(SERVICE), store.latencies(MONOLITH), summary)
    return figure, components.summary_view(summary), components.history_table(store.recent(RECENT_ROWS)), store.signature()


def history_csv(store: HistoryStore) -> dict:
    """What dcc.Download needs to save the history as a CSV file."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return {"content": store.to_csv(), "filename": f"warmserve-history-{stamp}.csv", "type": "text/csv"}


def run_monolith_view(settings: DashboardSettings, store: HistoryStore, sha256: str | None, image_name: str | None,
                      model: str | None, on_progress: Callable[[float], None] | None = None):
    """Run the monolith on a kept upload, record it as a "monolith" row and return the result panel."""
    path = kept_upload(settings.uploads_dir, sha256 or "")
    if path is None:
        return dbc.Alert("Classify an image first (drop one or click an example), then run the monolith on it.",
                                    color="info")
    name = image_name or sha256[:12]
    result, wall_ms = run_monolith_on_file(path, model=model, timeout_s=settings.monolith_timeout_s,
                                           on_progress=on_progress)
    try:
        store.add(monolith_record(name, result, wall_ms=wall_ms, source="ui", sha256=sha256))
    except Exception:  # noqa: BLE001 - still show the result
        log.exception("Could not record the monolith run in %s", store.path)
    return components.monolith_result(result, wall_ms, name, store.summary()[SERVICE]["p50"])


def option_label(options: Sequence[dict] | None, value: str | None) -> str | None:
    for option in options or []:
        if option.get("value") == value:
            return str(option.get("label"))
    return None
