"""What the monolith button and ``python -m dashboard monolith`` do, as plain functions: tests call these directly.

What the browser sends is input, never configuration: the monolith runs the
model named in the server's settings, on an image found by its (validated)
sha256 among the kept uploads, under the name the server recorded for it.
Every run, from the UI or the command line, waits for a slot of the shared
cap (``queue.py``); a full line is refused at once and not recorded (a
refusal says nothing about the monolith's latency).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable

from model_backend.errors import Overloaded

from ..classify.session_results import is_sha256
from ..common.kept_uploads import KEEP_UPLOADS, kept_uploads_for
from ..common.sanitize import fallback_name
from ..history.records import SERVICE, monolith_record
from ..history.store import HistoryStore
from ..settings import DashboardSettings
from .layout import image_gone_panel, monolith_result, no_image_panel, refused_panel
from .queue import MonolithSlots, QueuePlace, monolith_slots
from .runner import run_monolith_on_file

log = logging.getLogger(__name__)

Runner = Callable[..., tuple[dict, float]]


def monolith_queue(settings: DashboardSettings) -> MonolithSlots:
    """The cap every dashboard process shares: in Redis across replicas (``--redis``), else files under data_dir."""
    return monolith_slots(settings)


def run_in_slot(settings: DashboardSettings, path: Path, name: str, on_progress: Callable[[str], None] | None = None,
                *, queue: MonolithSlots | None = None, runner: Runner = run_monolith_on_file) -> tuple[dict, float]:
    """Wait for a monolith slot, then run the monolith on ``path``: (its JSON or an error dict, wall-clock ms).

    Raises :class:`Overloaded` when the line is full (or waited in too long). ``on_progress`` hears the place in
    line, then the seconds spent running.
    """
    report = on_progress or (lambda _text: None)
    queue = queue if queue is not None else monolith_queue(settings)
    waiting_since = time.monotonic()

    def waiting(place: QueuePlace) -> None:
        report(f"Waiting for a free monolith slot: {place.text()} "
               f"(at most {place.slots} at once; waiting {time.monotonic() - waiting_since:.0f} s)…")

    # Runs ahead finish within monolith_timeout_s each; the bound only matters if something is stuck.
    slot = queue.acquire(on_wait=waiting, timeout_s=(settings.monolith_queue + 1) * settings.monolith_timeout_s)

    def running(elapsed_s: float) -> None:
        report(f"Running the monolith on {name}: {elapsed_s:.0f} s (import TensorFlow, load the model, predict once)…")

    with slot:
        return runner(path, model=settings.monolith_model, timeout_s=settings.monolith_timeout_s,
                      on_progress=running, pass_fds=(slot.fd,))


def run_monolith_view(settings: DashboardSettings, store: HistoryStore, sha256: object,
                      on_progress: Callable[[str], None] | None = None, *, queue: MonolithSlots | None = None,
                      runner: Runner = run_monolith_on_file):
    """Run the monolith on a kept upload, record a "monolith" row and return the result panel.

    ``sha256`` is the only thing taken from the browser.
    """
    if not is_sha256(sha256):
        return no_image_panel()
    # files under data_dir, or a private temp file of the row in a PostgreSQL history (removed after the run)
    with kept_uploads_for(settings.uploads_dir, store).local_file(sha256) as path:
        if path is None:
            # A session's result can outlive its kept image (the newest KEEP_UPLOADS of every visitor are kept).
            return image_gone_panel(KEEP_UPLOADS)
        name = store.image_name(sha256) or fallback_name(sha256)
        try:
            result, wall_ms = run_in_slot(settings, path, name, on_progress, queue=queue, runner=runner)
        except Overloaded as refusal:
            log.info("Monolith run on %s refused: %s", name, refusal.message)
            return refused_panel(refusal.message)
    try:
        store.add(monolith_record(name, result, wall_ms=wall_ms, source="ui", sha256=sha256))
    except Exception:  # noqa: BLE001 - still show the result
        log.exception("Could not record the monolith run in %s", store.path)
    baseline, baseline_text = service_baseline(store.summary())
    return monolith_result(result, wall_ms, name, baseline, baseline_text)


def service_baseline(summary: dict) -> tuple[float | None, str]:
    """What a monolith run is compared with: like with like, the median of service requests that ran alone
    (the history's "alone" group: batch 1, no queue) when there are any, else every service request's median."""
    alone = ((summary.get("groups") or {}).get("alone") or {}).get("p50")
    if alone:
        return alone, "the median round trip of service requests that ran alone (batch 1, no queue)"
    return summary.get(SERVICE, {}).get("p50"), "the service's median round trip (all requests)"


def run_monolith_job(settings: DashboardSettings, sha256: object, on_progress: Callable[[str], None]):
    """The button's background job: :func:`run_monolith_view` with a history store of the job's own.

    A background callback runs in a worker process of its own (the DiskcacheManager starts one per job), and
    SQLite connections must not cross a fork, so the job opens its own store there instead of using the
    parent's. (The store is cheap to open; every process shares the one SQLite file.) In a stopping
    ``jobs-worker``, a run still going when its grace period ends is stopped with a message (jobs/shutdown.py).
    """
    from ..jobs.shutdown import stop_with_the_worker

    return run_monolith_view(settings, HistoryStore.from_settings(settings), sha256, stop_with_the_worker(on_progress))


def run_monolith_from_command_line(settings: DashboardSettings, image: Path, store: HistoryStore | None = None,
                                   *, runner: Runner = run_monolith_on_file) -> dict:
    """``python -m dashboard monolith IMAGE``: run it under the shared cap and record it; the monolith's JSON.

    A refusal (the line is full) comes back as an ``{"error": ...}`` dict and is not recorded.
    """
    store = store if store is not None else HistoryStore.from_settings(settings)
    image = Path(image).expanduser().resolve()  # the monolith runs in the repository's folder
    try:
        result, wall_ms = run_in_slot(settings, image, image.name, runner=runner)
    except Overloaded as refusal:
        return {"error": {"code": refusal.code, "message": refusal.message}}
    store.add(monolith_record(image.name, result, wall_ms=wall_ms, source="cli"))
    return result
