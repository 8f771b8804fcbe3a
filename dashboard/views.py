"""What each callback does, as plain functions of (settings, client, store, inputs): tests call these directly.

The callbacks in callbacks.py only unpack Dash's inputs, call one of these and
return its result; nothing here needs a browser or a Dash request context.

What the browser sends is input, never configuration: the monolith runs the
model named in the server's settings, on an image found by its (validated)
sha256 among the kept uploads, under the name the server recorded for it.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Sequence

import dash_bootstrap_components as dbc
from dash import html

from model_backend.errors import Overloaded

from . import components
from .classify import Outcome, Upload, classify_many, kept_upload, record_outcomes, uploads_from_browser
from .figures import history_figure
from .history import MONOLITH, SERVICE, HistoryStore, monolith_record
from .layout import list_examples
from .monolith_queue import MonolithQueue, QueuePlace
from .monolith_runner import run_monolith_on_file
from .sanitize import fallback_name
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


def monolith_queue(settings: DashboardSettings) -> MonolithQueue:
    """The queue every dashboard process on this host shares (files under data_dir)."""
    return MonolithQueue(settings.data_dir / "monolith-queue", slots=settings.monolith_concurrency,
                         max_waiting=settings.monolith_queue)


def run_monolith_view(settings: DashboardSettings, store: HistoryStore, sha256: object,
                      on_progress: Callable[[str], None] | None = None, *, queue: MonolithQueue | None = None,
                      runner: Callable[..., tuple[dict, float]] = run_monolith_on_file):
    """Wait for a monolith slot, run it on a kept upload, record a "monolith" row and return the result panel.

    ``sha256`` is the only thing taken from the browser. A full queue is refused at once and is not recorded
    (a refusal says nothing about the monolith's latency); ``on_progress`` hears the place in line, then the
    seconds spent running.
    """
    path = kept_upload(settings.uploads_dir, sha256) if isinstance(sha256, str) else None
    if path is None:
        return dbc.Alert("Classify an image first (drop one or click an example), then run the monolith on it.",
                         color="info")
    name = store.image_name(sha256) or fallback_name(sha256)
    report = on_progress or (lambda _text: None)
    queue = queue if queue is not None else monolith_queue(settings)
    waiting_since = time.monotonic()

    def waiting(place: QueuePlace) -> None:
        report(f"Waiting for a free monolith slot: {place.text()} "
               f"(at most {place.slots} at once; waiting {time.monotonic() - waiting_since:.0f} s)…")

    try:
        # Runs ahead finish within monolith_timeout_s each; the bound only matters if something is stuck.
        slot = queue.acquire(on_wait=waiting, timeout_s=(settings.monolith_queue + 1) * settings.monolith_timeout_s)
    except Overloaded as refusal:
        log.info("Monolith run on %s refused: %s", name, refusal.message)
        return dbc.Alert(refusal.message, color="warning", className="monolith-refused")

    def running(elapsed_s: float) -> None:
        report(f"Running the monolith on {name}: {elapsed_s:.0f} s (import TensorFlow, load the model, predict once)…")

    with slot:
        result, wall_ms = runner(path, model=settings.monolith_model, timeout_s=settings.monolith_timeout_s,
                                 on_progress=running, pass_fds=(slot.fd,))
    try:
        store.add(monolith_record(name, result, wall_ms=wall_ms, source="ui", sha256=sha256))
    except Exception:  # noqa: BLE001 - still show the result
        log.exception("Could not record the monolith run in %s", store.path)
    return components.monolith_result(result, wall_ms, name, store.summary()[SERVICE]["p50"])
