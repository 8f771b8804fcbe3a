"""Backend status for the status bar and /api/v1/health: one plain dict from ping() and info().

Only the status poller (``poller.py``) calls ``backend_status`` in the
running dashboard; health and the status bar read the poller's latest state.
"""

from __future__ import annotations

import time

from model_backend.errors import BackendError

#: what the status keeps from info(): the setup, and the depth now (a backend's in_flight; a broker's waiting and
#: in_flight at its workers) next to its capacity (queue_size)
INFO_KEYS = ("model", "input_size", "num_classes", "max_batch", "max_wait_ms", "queue_size", "uptime_s",
             "requests_served", "workers", "ready", "in_flight", "waiting", "broker", "runtime", "runtime_reason",
             "execution")


def backend_status(client, address: str) -> dict:
    """{"reachable", "ready", "model", ..., "error"}: never raises; ping first (short timeout), then info."""
    status: dict = {"address": address, "reachable": False, "ready": False, "model": None,
                    "error": None, "error_code": None, "checked_at": time.time()}
    try:
        ping = client.ping()
    except BackendError as error:
        status.update(error=error.message, error_code=error.code)
        return status
    status.update(reachable=True, ready=bool(ping.get("ready")), model=ping.get("model"))
    try:
        info = client.info()
    except BackendError as error:
        status.update(error=error.message, error_code=error.code)
        return status
    status.update({key: info[key] for key in INFO_KEYS if key in info})
    status["ready"] = bool(status["ready"])
    return status

