"""How the backend runs forward passes on the cores it has: the execution strategy and its inference threads.

Strategies (``--execution``, ``WARMSERVE_EXECUTION``):

* ``batched``: one inference thread, the :class:`~.batching.MicroBatcher` and
  the model as loaded. Always used for TensorFlow (and GPUs), where batching
  pays; not a choice for LiteRT, whose ``wide`` is the same thing.
* ``wide``: the same for LiteRT: one interpreter with all cores, batches formed
  by the MicroBatcher.
* ``pool``: one single-thread interpreter per core, each on its own inference
  thread, each taking one request at a time (up to ``pool_batch`` when more
  wait, see below) from one shared queue. On a busy
  server this beats one wide interpreter (no thread-pool hand-offs, and a core
  busy decoding does not stall a forward pass split over all cores), but a
  lone request waits a whole single-core forward pass.
* ``adaptive``: the pool, plus the wide interpreter: a request that is alone
  (nothing else ready or decoding, every core free) runs on the wide one, any
  other on a narrow one. The two never overlap: the wide one takes every core
  slot of the gate, a narrow one takes one, so no more interpreter threads
  run than there are cores. The server may run such a lone request on its
  own I/O loop instead (:meth:`PoolRunner.run_alone`: every slot taken the
  same way), which saves two thread hand-offs at concurrency 1.
* ``auto`` (default): ``batched`` for TensorFlow or for a model that cannot
  make single-thread replicas, ``wide`` on one core or when the replicas
  would cost more than ``REPLICA_MEMORY_BUDGET`` bytes (e.g. ResNet50: about
  100 MB each); else the pool under load, always, and a short interleaved
  trial at start-up (:func:`measure`, a lone image on the wide interpreter
  and on a narrow one) says whether the wide one also serves lone requests
  (``adaptive``) or not (``pool``).

  Why the pool is not put to a trial against ``wide``: on this 2-core
  machine (EfficientNet-Lite0), a quiet forward-pass loop gave 2.54 ms per
  image for two single-thread interpreters side by side against 2.92 ms for
  one 2-thread interpreter (batch 1 and batch 16 alike); through the service
  (6 interleaved runs, medians; a shared machine, reps swung 2x) pool and
  adaptive gave more images/s than wide at both c=16 and c=32 in 4 runs
  (1.2-2.2x), mixed results in one (0.92-1.18x) and fewer in one
  (0.5-0.9x), and used 2-6% less backend CPU per image in all 5 runs that
  counted it. A
  start-up trial of that comparison is at the mercy of whatever else runs at
  that moment (another process on one core slows a 2-thread forward pass
  twofold) and picked ``wide`` in such a run; the lone-request comparison
  decides between two good choices.

``pool_batch`` B (``--pool-batch``, default 2): a ``pool``/``adaptive``
inference thread that finds more requests waiting than there are other free
cores takes up to B of them, decodes each (a bad one is answered with its
error and left out) and runs them as one batch. A 1-thread interpreter costs
less per image at batch 2 than at batch 1 (EfficientNet-Lite0 here: 4.91 vs
5.15 ms); a lone request, or one per free core, is never held back to fill a
batch. Measured interleaved on a quiet 2-core machine (``python -m
tools.bench.ab``, 6 rounds): +7.7% images/s at c=16 (6 of 6 rounds), 6% less
backend CPU per image, p50 at c=1 unchanged. Pinning each inference thread to
its own core (``os.sched_setaffinity``) was measured on top of it too: +0.2%,
nothing to keep.

A model supports ``pool``/``adaptive`` when it has ``replica(num_threads)``
(a set-up copy with its own interpreter; see models/litert_runtime.py).
:func:`plan_execution` returns an :class:`ExecutionPlan` (strategy, reason,
predictors); :func:`make_runner` turns it into threads that call the
server's ``infer(batch, predict)``; the runner's ``expect/put/cancel/close``
match the MicroBatcher's, so the decode side does not care which runs.
Every inference thread is a daemon that survives any one exception, and
``close()`` never waits for one.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np

from .batching import MicroBatcher, ReadyQueue
from .settings import EXECUTIONS

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Predictor = Callable[[np.ndarray], np.ndarray]

#: extra interpreters may cost at most this many bytes (estimated as the flatbuffer's size each) for auto to try them
REPLICA_MEMORY_BUDGET = 96 * 1024 * 1024
#: auto adds the wide interpreter for lone requests (adaptive) only when it answers one at least this much sooner
LONE_MARGIN = 0.15
#: the start-up trial: at most this many interleaved rounds, and stops after TRIAL_BUDGET_S (at least 3 rounds)
TRIAL_ROUNDS = 9
TRIAL_BUDGET_S = 0.3


@dataclass(frozen=True)
class ExecutionPlan:
    """What runs the forward passes: the strategy, why, and the predictors it uses."""

    strategy: str  # batched | wide | pool | adaptive
    reason: str
    wide: Predictor | None = None  # the model's own predict (all cores): batched, wide, adaptive
    narrow: tuple[Predictor, ...] = ()  # one single-thread replica per core: pool, adaptive
    trial: dict = field(default_factory=dict)  # auto's measurements (ms); the reason quotes them

    @property
    def inference_threads(self) -> int:
        return len(self.narrow) if self.narrow else 1

    def describe(self) -> dict:
        return {"execution": self.strategy, "execution_reason": self.reason, "inference_threads": self.inference_threads}


def batched_plan(model, reason: str) -> ExecutionPlan:
    return ExecutionPlan("batched", reason, wide=model.predict)


def plan_execution(execution: str, model, cores: int) -> ExecutionPlan:
    """The plan ``execution`` asks for on ``model`` with ``cores`` cores (auto: measured, see the module doc)."""
    if execution not in EXECUTIONS:
        raise ValueError(f"Expected execution to be one of {', '.join(EXECUTIONS)}. Received: {execution!r}")
    runtime = getattr(model, "runtime", "tensorflow")
    if runtime != "litert" or not hasattr(model, "replica"):
        why = f"{runtime} runtime" if runtime != "litert" else "the model cannot make single-thread replicas"
        if execution not in ("auto", "wide"):
            log.warning("--execution %s needs LiteRT replicas; %s: one batching inference thread instead", execution, why)
        return batched_plan(model, f"{why}: one inference thread with micro-batching")
    if execution == "wide":
        return ExecutionPlan("wide", "asked for (--execution wide)", wide=model.predict)
    if cores < 2:
        return ExecutionPlan("wide", f"{cores} core: nothing to run side by side", wide=model.predict)
    if execution in ("pool", "adaptive"):
        narrow = tuple(model.replica(1).predict for _ in range(cores))
        return ExecutionPlan(execution, f"asked for (--execution {execution}); {cores} single-thread interpreters",
                             wide=model.predict if execution == "adaptive" else None, narrow=narrow)
    extra = int(getattr(model, "model_bytes", 0)) * cores
    if extra > REPLICA_MEMORY_BUDGET:
        return ExecutionPlan("wide", f"{cores} more interpreters would cost about {extra >> 20} MB (budget "
                             f"{REPLICA_MEMORY_BUDGET >> 20} MB)", wide=model.predict)
    narrow = tuple(model.replica(1).predict for _ in range(cores))
    return choose(measure(model.predict, narrow[0], model.input_size), model.predict, narrow)


def measure(wide: Predictor, narrow: Predictor, input_size: tuple[int, int],
            rounds: int = TRIAL_ROUNDS, budget_s: float = TRIAL_BUDGET_S) -> dict:
    """A lone image on the wide predictor and on a narrow one, interleaved; medians in ms.

    At least 3 rounds; stops after ``budget_s``.
    """
    height, width = input_size
    image = np.random.default_rng(0).random((1, height, width, 3), dtype=np.float32)
    wide(image)  # warm: the first pass allocates
    narrow(image)
    started = time.perf_counter()
    wide_ms, narrow_ms = [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        wide(image)
        t1 = time.perf_counter()
        narrow(image)
        t2 = time.perf_counter()
        wide_ms.append((t1 - t0) * 1000)
        narrow_ms.append((t2 - t1) * 1000)
        if time.perf_counter() - started > budget_s and len(wide_ms) >= 3:
            break
    return {
        "wide_lone_ms": round(statistics.median(wide_ms), 3),
        "narrow_lone_ms": round(statistics.median(narrow_ms), 3),
        "rounds": len(wide_ms),
        "trial_s": round(time.perf_counter() - started, 3),
    }


def choose(trial: dict, wide: Predictor, narrow: tuple[Predictor, ...]) -> ExecutionPlan:
    """auto's rule: the pool under load always; the wide interpreter for a lone request too if it is clearly faster."""
    wide_ms, narrow_ms = trial["wide_lone_ms"], trial["narrow_lone_ms"]
    figures = f"a lone image: wide {wide_ms:.2f} ms, single-thread {narrow_ms:.2f} ms"
    if wide_ms < narrow_ms * (1 - LONE_MARGIN):
        return ExecutionPlan("adaptive", f"measured: wide is faster alone, the pool under load ({figures})",
                             wide=wide, narrow=narrow, trial=trial)
    return ExecutionPlan("pool", f"measured: wide is not faster alone, the pool is faster under load ({figures})",
                         narrow=narrow, trial=trial)


# -- the threads that run a plan ---------------------------------------------------------------


Infer = Callable[[list, Predictor], None]


class BatchingRunner(Generic[Item]):
    """batched / wide: the MicroBatcher and one inference thread (today's pipeline, unchanged)."""

    def __init__(self, predict: Predictor, infer: Infer, on_exit: Callable[[], None], max_batch: int, max_wait_ms: float):
        self._batcher: MicroBatcher[Item] = MicroBatcher(max_batch, max_wait_ms)
        self.expect, self.put, self.cancel = self._batcher.expect, self._batcher.put, self._batcher.cancel
        self._predict, self._infer, self._on_exit = predict, infer, on_exit
        self.threads = [threading.Thread(target=self._run, name="inference", daemon=True)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def _run(self) -> None:
        try:
            while True:
                batch = self._batcher.next_batch()
                if not batch:
                    return
                _guarded(self._infer, batch, self._predict)
        finally:
            self._on_exit()

    def run_alone(self, item: Item, max_forward_ms: float) -> bool:
        """Never here: every request goes through the decode pool and the batcher (see PoolRunner.run_alone)."""
        return False

    def close(self) -> None:
        self._batcher.close()


class CoreGate(ReadyQueue[Item]):
    """The shared queue of pool / adaptive, and the core slots that keep interpreter threads <= cores.

    ``take()`` blocks until an item is ready and a slot is free, and says
    whether to run it wide (adaptive only: the item is alone, nothing else is
    ready or decoding, and every slot is free: it takes them all). ``release``
    gives the slots back. ``expect/put/cancel/close`` come from the
    :class:`~.batching.ReadyQueue`; once closed, take() returns None (nobody
    waits for the replies any more).
    """

    def __init__(self, slots: int, adaptive: bool, max_take: int = 1):
        if slots < 1 or max_take < 1:
            raise ValueError(f"Expected slots >= 1 and max_take >= 1. Received: slots={slots}, max_take={max_take}")
        super().__init__()
        self.slots = slots
        self.adaptive = adaptive
        self.max_take = max_take
        self._free = slots

    def take(self) -> tuple[list[Item], bool] | None:
        """(items, wide) once an item is ready and a slot is free; None once closed.

        A narrow taker gets up to ``max_take`` of the waiting items, leaving
        one for each other free slot (so a free core never idles while this
        one batches); a wide taker gets the one item that is alone.
        """
        with self._cond:
            while not self._closed and not (self._ready and self._free > 0):
                self._cond.wait()
            if self._closed:
                return None
            items = [self._ready.popleft()]
            if self.adaptive and self._free == self.slots and not self._ready and self._decoding == 0:
                self._free = 0
                return items, True
            self._free -= 1
            while len(items) < self.max_take and len(self._ready) > self._free:
                items.append(self._ready.popleft())
            if self._ready and self._free > 0:
                self._cond.notify()  # another taker can start at once
            return items, False

    def take_alone(self) -> bool:
        """adaptive: take every slot for one item the caller runs itself, if the gate is idle (nothing ready
        or decoding, every slot free); False (nothing taken) otherwise. Give the slots back with release(True)."""
        with self._cond:
            if not self.adaptive or self._closed or self._ready or self._decoding or self._free != self.slots:
                return False
            self._free = 0
            return True

    def release(self, wide: bool) -> None:
        with self._cond:
            self._free = min(self.slots, self._free + (self.slots if wide else 1))
            self._cond.notify_all()


class PoolRunner(Generic[Item]):
    """pool / adaptive: one inference thread per narrow predictor, all taking from one :class:`CoreGate`
    (up to ``pool_batch`` requests at a time)."""

    def __init__(self, plan: ExecutionPlan, infer: Infer, on_exit: Callable[[], None],
                 prepare: Callable[[Item], bool] | None = None, *, pool_batch: int = 1):
        self._prepare = prepare
        self._gate: CoreGate[Item] = CoreGate(len(plan.narrow), adaptive=plan.wide is not None, max_take=pool_batch)
        self.expect, self.put, self.cancel = self._gate.expect, self._gate.put, self._gate.cancel
        self._wide, self._infer, self._on_exit = plan.wide, infer, on_exit
        #: the latest wide forward pass (ms; auto's start-up trial until one has run): how long run_alone would hold its caller
        self.wide_ms: float | None = plan.trial.get("wide_lone_ms") if plan.wide is not None else None
        self.threads = [threading.Thread(target=self._run, args=(predict,), name=f"inference-{i}", daemon=True)
                        for i, predict in enumerate(plan.narrow)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def _run(self, narrow: Predictor) -> None:
        try:
            while True:
                taken = self._gate.take()
                if taken is None:
                    return
                items, wide = taken
                self._run_taken(items, self._wide if wide else narrow, wide)
        finally:
            self._on_exit()

    def run_alone(self, item: Item, max_forward_ms: float) -> bool:
        """adaptive: run ``item`` on the calling thread, on the wide interpreter, if the gate is idle (it takes
        every core slot meanwhile) and the wide forward pass last took at most ``max_forward_ms``; False (nothing
        done, put it in instead) otherwise. The same steps as an inference thread's: prepare, forward, infer."""
        if self._wide is None or self.wide_ms is None or self.wide_ms > max_forward_ms or not self._gate.take_alone():
            return False
        self._run_taken([item], self._wide, True)
        return True

    def _run_taken(self, items: list[Item], predict: Predictor, wide: bool) -> None:
        """Prepare, forward and answer items taken from the gate; their core slots are given back whatever fails."""
        if self._prepare is not None:
            items = [item for item in items if _prepared(self._prepare, item)]
        if not items:  # each failed one was answered with its error
            self._gate.release(wide)
            return
        released = []

        def forward(inputs: np.ndarray) -> np.ndarray:
            started = time.perf_counter()
            try:
                return predict(inputs)
            finally:  # the cores are free once the forward pass ends, before the replies are encoded
                if wide:
                    self.wide_ms = (time.perf_counter() - started) * 1000.0
                self._gate.release(wide)
                released.append(True)

        try:
            _guarded(self._infer, items, forward)
        finally:
            if not released:
                self._gate.release(wide)

    def close(self) -> None:
        self._gate.close()


def _prepared(prepare: Callable[[Item], bool], item: Item) -> bool:
    """``prepare(item)``, or False (logged) if it raised: the thread outlives any one failure."""
    try:
        return prepare(item)
    except Exception:  # noqa: BLE001 - prepare answers its own errors; this is the last resort
        log.exception("Inference thread: preparing an item failed")
        return False


def _guarded(infer: Infer, batch: list, predict: Predictor) -> None:
    """An inference thread's last resort: ``infer`` answers its own jobs; whatever escapes it is logged, not fatal."""
    try:
        infer(batch, predict)
    except Exception:  # noqa: BLE001 - the thread outlives any one failure
        log.exception("Inference thread: unexpected failure for a batch of %d", len(batch))


def make_runner(plan: ExecutionPlan, infer: Infer, on_exit: Callable[[], None], *, max_batch: int, max_wait_ms: float,
                prepare: Callable[[Item], bool] | None = None, pool_batch: int = 1):
    """The (not yet started) threads that run ``plan``; ``infer(batch, predict)`` answers its own jobs.

    ``prepare`` (pool / adaptive): each inference thread first prepares (decodes) the item it takes, and
    skips it when that answered it with an error (False); the server then puts items in undecoded.
    """
    if plan.narrow:
        return PoolRunner(plan, infer, on_exit, prepare, pool_batch=pool_batch)
    return BatchingRunner(plan.wide, infer, on_exit, max_batch, max_wait_ms)
