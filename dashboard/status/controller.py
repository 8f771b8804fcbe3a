"""What the status callback does, as a plain function tests call directly: the bar from the poller's state."""

from __future__ import annotations

from .layout import status_bar
from .poller import StatusPoller


def status_view(poller: StatusPoller) -> tuple[object, dict]:
    """(status bar, status dict for the BACKEND_STORE) from the poller's latest state: never a backend call."""
    status = poller.snapshot()
    return status_bar(status), status
