"""A bounded stop for ``python -m dashboard jobs-worker``: on SIGTERM, running monolith runs get
``jobs_stop_grace_s`` (``--stop-grace-s``, ``WARMSERVE_DASH_JOBS_STOP_GRACE_S``, default 20 s) to finish; those
still running then are stopped, and each one's user is told so in the monolith panel.

Celery's SIGTERM is a warm shutdown: the worker takes no new job (jobs it had
reserved but not started go back to Redis, for another worker), waits for the
running ones, then exits. A monolith run can take minutes (``monolith_timeout_s``),
longer than Kubernetes or compose wait before they SIGKILL, which would lose the
run without a word to its user. So when the warm shutdown begins (Celery's
``worker_shutting_down`` signal, in the worker's main process) a timer starts;
when it fires it creates a flag file in a private folder made before the pool
processes were forked. Each monolith job checks that flag on every progress tick
(twice a second, running or waiting for a slot: :func:`stop_with_the_worker`) and
raises :class:`JobsWorkerStopped`: the runner kills the monolith process, the
cap's slot is released, nothing is recorded in the history (a cut-short run says
nothing about the monolith's latency), and the job returns the panel with
:data:`STOPPED_MESSAGE`. The pool is then idle and the warm shutdown ends: the
process is gone within the grace period plus a few seconds (the manifests give it
10 s more). Outside a jobs worker (the DiskcacheManager's job processes) nothing
arms the flag and the check is a no-op.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
import threading
from functools import partial
from pathlib import Path
from typing import Callable

from ..monolith.queue import QueueFull

log = logging.getLogger(__name__)

STOPPED_MESSAGE = ("The jobs worker running this monolith run was stopped (a restart or a scale-down) before the run "
                   "ended, so the run was cut short and not recorded. Run it again.")

#: the flag file of this worker (set in the main process before the pool forks; its processes inherit it)
_flag: Path | None = None


class JobsWorkerStopped(QueueFull):
    """The jobs worker is stopping and this run did not end within the grace period: shown like a refusal."""


def arm(grace_s: float) -> Path:
    """In the worker's main process, before Celery forks its pool: make the flag's folder and stop the runs still
    going ``grace_s`` seconds after the warm shutdown begins. Returns the flag file's path."""
    global _flag
    from celery.signals import worker_shutting_down

    folder = tempfile.mkdtemp(prefix="warmserve-jobs-")
    owner = os.getpid()
    atexit.register(lambda: os.getpid() == owner and shutil.rmtree(folder, ignore_errors=True))
    _flag = Path(folder) / "stop-monolith-runs"
    worker_shutting_down.connect(partial(_on_shutdown, grace_s), weak=False)
    return _flag


def _on_shutdown(grace_s: float, sender=None, sig=None, how=None, exitcode=None, **_kwargs) -> None:
    log.info("%s shutdown (%s): running monolith runs have %g s to finish, then they are stopped", how, sig, grace_s)
    timer = threading.Timer(grace_s, stop_runs_now)
    timer.daemon = True
    timer.start()


def stop_runs_now() -> None:
    """Tell every monolith job of this worker to stop (they notice within a progress tick)."""
    if _flag is not None:
        _flag.touch()
        log.warning("Grace period over: stopping the monolith runs still going; their users are told to run them again")


def stopping() -> bool:
    return _flag is not None and _flag.exists()


def stop_with_the_worker(report: Callable[[str], None] | None) -> Callable[[str], None]:
    """``report`` (a job's progress callback) that first raises :class:`JobsWorkerStopped` once the worker's grace
    period is over."""

    def checked(text: str) -> None:
        if stopping():
            raise JobsWorkerStopped(STOPPED_MESSAGE)
        if report is not None:
            report(text)

    return checked
