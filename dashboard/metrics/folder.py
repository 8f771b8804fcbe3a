"""The metrics folder: puts the dashboard and its job processes in prometheus_client's multiprocess mode.

Must run before anything imports prometheus_client (the library picks its
storage at import): ``python -m dashboard serve`` calls
:func:`prepare_multiprocess_dir` first thing. A folder made here is private
(mode 0700), new and empty, and removed when the process exits; a folder the
operator names in ``PROMETHEUS_MULTIPROC_DIR`` is used as it is (wipe it
between runs, as for gunicorn).
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import sys
import tempfile

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess_dir() -> str | None:
    """Set ``PROMETHEUS_MULTIPROC_DIR`` for this process and its children; return the folder made, if any."""
    if "prometheus_client" in sys.modules:
        log.warning("prometheus_client was imported before the metrics folder was set; /metrics shows this process only")
    existing = os.environ.get(MULTIPROC_ENV)
    if existing:
        os.makedirs(existing, exist_ok=True)
        return None
    folder = tempfile.mkdtemp(prefix="warmserve-metrics-")
    os.environ[MULTIPROC_ENV] = folder
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder
