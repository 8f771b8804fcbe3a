"""What the status callback does, as plain functions tests call directly: the bar from the poller's state."""

from __future__ import annotations

from typing import Mapping

from .layout import EXPLAINED_FACTS, HIDDEN, SHOWN, explained_facts, runtime_help, status_bar
from .poller import StatusPoller


def status_view(poller: StatusPoller) -> tuple[object, dict]:
    """(status bar's state, status dict for the BACKEND_STORE) from the poller's latest state: never a backend call."""
    status = poller.snapshot()
    return status_bar(status), status


def explained_facts_view(status: Mapping) -> tuple[list, list, str]:
    """(values, styles) of the bar's explained facts in EXPLAINED_FACTS order, and the runtime's help text."""
    values = explained_facts(status)
    return ([values[key] for key in EXPLAINED_FACTS], [HIDDEN if values[key] is None else SHOWN for key in EXPLAINED_FACTS],
            runtime_help(status))
