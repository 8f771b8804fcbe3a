"""Composition root of the backend process: pick the runtime, load the model, plan its execution, warm it, open the server.

Kept apart from cli.py so that the CLI (and ``classify``/``ping``) never
imports TensorFlow (nor does ``serve`` with a cached LiteRT model), and so tests and the bench can start a service in-process.
The model loads on a daemon thread while the caller watches ``stop``, so a
signal during the seconds of loading ends start-up at once (within 0.1 s).
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

from .execution import plan_execution
from .models.litert_runtime import litert_threads
from .server import BackendServer
from .settings import ServerSettings

log = logging.getLogger(__name__)

READY_MESSAGE = "Backend ready on"


def load_model(settings: ServerSettings):
    """Pick the runtime, build the model, load weights, plan its execution and warm it up. Slow; once per process.

    The runtime (models/runtimes.py) is LiteRT when a cached, verified conversion
    exists (TensorFlow is then never imported), else TensorFlow, or a first-start
    conversion; ``model.runtime`` and ``model.runtime_reason`` say which and why.
    The execution plan (execution.py; ``--execution``) says how forward passes
    run; only batch sizes it uses are warmed (a pool runs one image at a time,
    and its trial has warmed its interpreters). Returns ``(model, plan)``.
    """
    from .models.runtimes import load_classifier

    started = time.perf_counter()
    model = load_classifier(settings.model, settings.intra_op_threads, settings.inter_op_threads)
    loaded = time.perf_counter()
    plan = plan_execution(settings.execution, model, litert_threads(settings.intra_op_threads))
    planned = time.perf_counter()
    if plan.narrow:
        sizes = [1]
        for predict in (plan.wide, *plan.narrow) if plan.wide else plan.narrow:
            predict(np.zeros((1, *model.input_size, 3), dtype=np.float32))
    else:
        sizes = range(1, settings.max_batch + 1) if settings.warmup_all_batch_sizes else sorted({1, settings.max_batch})
        model.warmup(sizes)
    warmed = time.perf_counter()
    log.info(
        "Model %s loaded in %.2f s, execution planned in %.2f s, warmed up %d batch sizes in %.2f s (input %sx%s, %d classes)",
        model.name, loaded - started, planned - loaded, len(list(sizes)), warmed - planned, *model.input_size, model.num_classes,
    )
    log.info("Runtime: %s (%s)", model.runtime, model.runtime_reason)
    log.info("Execution: %s on %d inference thread(s) (%s)", plan.strategy, plan.inference_threads, plan.reason)
    return model, plan


def load_model_unless_stopped(settings: ServerSettings, stop: threading.Event, poll_s: float = 0.1):
    """:func:`load_model` on a daemon thread; None as soon as ``stop`` is set (the thread is abandoned)."""
    outcome: dict = {}
    done = threading.Event()

    def load() -> None:
        try:
            outcome["loaded"] = load_model(settings)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=load, name="model-loader", daemon=True).start()
    while not done.wait(poll_s):
        if stop.is_set():
            log.info("Stopped while the model was loading")
            return None
    if "error" in outcome:
        raise outcome["error"]
    return None if stop.is_set() else outcome["loaded"]


def start_service(settings: ServerSettings, stop: threading.Event | None = None) -> BackendServer | None:
    """Load the model, then bind; logs the ready line. Returns None if ``stop`` was set meanwhile."""
    loaded = load_model(settings) if stop is None else load_model_unless_stopped(settings, stop)
    if loaded is None:
        return None
    model, plan = loaded
    server = BackendServer(settings, model, plan=plan)
    endpoint = server.open()
    log.info(
        "%s %s (model=%s, execution=%s, max_batch=%d, max_wait_ms=%g, queue_size=%d)",
        READY_MESSAGE, endpoint, model.name, plan.strategy, settings.max_batch, settings.max_wait_ms, settings.queue_size,
    )
    return server
