"""The status poller: one daemon thread per dashboard process keeps the latest backend status in memory.

/api/v1/health and the status bar read ``StatusPoller.snapshot()``; they never
call the backend themselves, so they answer at once whatever the backend does
(dead, silent, overloaded) and however busy the request threads are. The
snapshot says when it was taken (``checked_at``, ``age_s``); a snapshot older
than ``stale_after_s`` (the poller is stuck) says ``stale`` and is not ready.
"""

from __future__ import annotations

import logging
import threading
import time

from .check import backend_status

log = logging.getLogger(__name__)


class StatusPoller:
    """Polls ``backend_status(client, address)`` every ``interval_s`` in a daemon thread; ``stop()`` ends it."""

    def __init__(self, client, address: str, interval_s: float, stale_after_s: float) -> None:
        self.client = client
        self.address = address
        self.interval_s = interval_s
        self.stale_after_s = stale_after_s
        self._lock = threading.Lock()
        self._first = threading.Event()
        self._stop = threading.Event()
        self._status: dict = {"address": address, "reachable": False, "ready": False, "model": None,
                              "error": "No answer from the backend yet (the first check is running).",
                              "error_code": "unavailable", "checked_at": None}
        self._started_at = time.time()
        self._thread: threading.Thread | None = None

    def start(self) -> "StatusPoller":
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="warmserve-status-poller", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float | None = 1.0) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def poll_once(self) -> dict:
        """One check (also what the thread does); never raises."""
        try:
            status = backend_status(self.client, self.address)
        except Exception as exc:  # noqa: BLE001 - a closed or broken client must not end the poller
            log.warning("Status check failed: %s", exc)
            status = {"address": self.address, "reachable": False, "ready": False, "model": None,
                      "error": f"The status check failed: {type(exc).__name__}", "error_code": "unavailable"}
        status["checked_at"] = time.time()
        with self._lock:
            self._status = status
        self._first.set()
        return status

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll_once()
            self._stop.wait(self.interval_s)

    def snapshot(self, wait_first_s: float = 0.0) -> dict:
        """A copy of the latest status plus ``age_s`` and ``stale``; waits up to wait_first_s for the first check."""
        if wait_first_s > 0 and not self._first.is_set():
            self._first.wait(wait_first_s)
        with self._lock:
            status = dict(self._status)
        now = time.time()
        checked_at = status.get("checked_at")
        age = now - (checked_at if checked_at is not None else self._started_at)
        status["age_s"] = round(max(age, 0.0), 3)
        status["stale"] = age > self.stale_after_s
        if status["stale"]:
            status.update(reachable=False, ready=False, error_code="stale",
                          error=f"No backend status for {age:.0f} s: the status check is stuck (last result kept).")
        return status
