"""Classifying images for the UI and the API: plain functions over ``BackendClient`` (no Dash in here).

The flow for a drop of files: send the uploads to the backend concurrently (a
thread pool over ``client.classify``, so the backend can batch them), record
every outcome in the history (queued for the store's writer thread, see
``history/writer.py``; flushed before the UI's answer goes out), and keep each accepted image on disk by its
sha256 (``common/kept_uploads.py``: files, or the history database when it is
PostgreSQL) so the monolith can be run on it later from any worker process or
replica. Errors come back as failed outcomes, never raised.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

from model_backend.errors import BackendError
from model_backend.protocol import ClassifyReply

from ..common.kept_uploads import KeptUploads, kept_uploads_for
from ..metrics import registry as metrics
from ..history.records import SERVICE, error_record, service_record
from ..history.store import HistoryStore
from .thumbnails import make_thumbnail
from .uploads import Outcome, Upload, check_upload

log = logging.getLogger(__name__)

MAX_PARALLEL = 16


def classify_one(client, upload: Upload, top_k: int, max_bytes: int) -> Outcome:
    """Classify one image, measuring the round trip; errors come back as a failed Outcome, never raised.

    Every outcome is counted in the Prometheus metrics (dashboard/metrics/registry.py).
    """
    outcome = _classify(client, upload, top_k, max_bytes)
    metrics.record_classify(upload.source, outcome.ok, outcome.error_code, outcome.latency_ms, outcome.reply)
    return outcome


def _classify(client, upload: Upload, top_k: int, max_bytes: int) -> Outcome:
    sha = upload.sha256
    refusal = check_upload(upload, max_bytes)
    if refusal is not None:
        return Outcome.failed(upload.name, sha, refusal, source=upload.source)
    started = time.perf_counter()
    try:
        with metrics.IN_FLIGHT.track_inprogress():
            # Read once into the typed reply (BadReply, a BackendError, if it is not one): nothing downstream re-reads keys.
            reply = ClassifyReply.from_wire(client.classify(upload.data, top_k=top_k))
    except BackendError as error:
        return Outcome.failed(upload.name, sha, error, (time.perf_counter() - started) * 1000, upload.source)
    latency_ms = (time.perf_counter() - started) * 1000
    return Outcome(upload.name, sha, True, reply=reply, latency_ms=latency_ms, source=upload.source)


def classify_many(client, uploads: Sequence[Upload], *, top_k: int, max_bytes: int, store: HistoryStore | None = None,
                  uploads_dir: Path | None = None, thumbnails: bool = True,
                  kept: KeptUploads | None = None) -> list[Outcome]:
    """Classify several images at once (concurrently, so the backend can batch them); record and keep each one.

    Accepted images are kept in ``kept``, or else where the history's kept uploads live (files in ``uploads_dir``,
    or the history database when it is PostgreSQL: ``common/kept_uploads.py``); nowhere when neither is given.
    """
    if not uploads:
        return []
    if kept is None and uploads_dir is not None:
        kept = kept_uploads_for(uploads_dir, store)
    workers = min(len(uploads), MAX_PARALLEL)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="classify") as pool:
        outcomes = list(pool.map(lambda u: classify_one(client, u, top_k, max_bytes), uploads))
    for upload, outcome in zip(uploads, outcomes, strict=True):
        if outcome.ok:
            if thumbnails:
                outcome.thumbnail = make_thumbnail(upload.data)
            if kept is not None:
                _keep_quietly(kept, upload)
    if store is not None:
        record_outcomes(store, outcomes)
        # The monolith button runs in a job process of its own and looks the image's name up in the history
        # by sha256: make these rows visible to other processes before the results (and the picker) go out.
        store.flush()
    return outcomes


def _keep_quietly(kept: KeptUploads, upload: Upload) -> None:
    """Keep an accepted image; a failing store costs its thumbnail and monolith run, never the user's results."""
    try:
        kept.keep(upload)
    except Exception:  # noqa: BLE001 - best effort, like the history
        log.exception("Could not keep %s for thumbnails and the monolith", upload.name)


def record_outcomes(store: HistoryStore, outcomes: Sequence[Outcome]) -> None:
    """Hand outcomes to the history's writer (queued, microseconds); a failing database never loses the user's results."""
    for outcome in outcomes:
        try:
            store.submit(outcome_record(outcome))
        except Exception:  # noqa: BLE001 - history is best effort, the answer still goes to the user
            log.exception("Could not record %s in the history at %s", outcome.name, store.path)


def outcome_record(outcome: Outcome) -> dict:
    """An outcome as a history record (a service row, ok or not)."""
    image = outcome.name or (outcome.sha256 or "")[:12]
    if outcome.ok and outcome.reply is not None:
        return service_record(image, outcome.sha256, outcome.reply.to_wire(), outcome.latency_ms or 0.0, outcome.source)
    return error_record(SERVICE, image, outcome.sha256, outcome.error_code or "internal", outcome.error_message or "",
                        outcome.latency_ms, outcome.source)
