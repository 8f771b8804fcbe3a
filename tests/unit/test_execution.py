"""Execution plans: which strategy a model gets and why, auto's rule, and the core gate that shares the cores."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from model_backend import execution
from model_backend.cli import build_parser
from model_backend.execution import CoreGate, choose, measure, plan_execution
from model_backend.settings import ServerSettings, SettingsError, build_settings
from tests.support.standin import StandInClassifier


class ReplicatingModel(StandInClassifier):
    """A stand-in that says it runs on LiteRT and makes single-thread replicas, as LiteRTClassifier does."""

    runtime = "litert"

    def __init__(self, num_threads: int = 2, model_bytes: int = 1000):
        super().__init__()
        self.num_threads = num_threads
        self.model_bytes = model_bytes
        self.replicas: list[ReplicatingModel] = []

    def replica(self, num_threads: int) -> "ReplicatingModel":
        copy = ReplicatingModel(num_threads, self.model_bytes)
        self.replicas.append(copy)
        return copy


def _trial(wide: float, narrow: float) -> dict:
    return {"wide_lone_ms": wide, "narrow_lone_ms": narrow, "rounds": 3, "trial_s": 0.1}


# -- plans --------------------------------------------------------------------------------


def test_tensorflow_always_batches_on_one_thread_whatever_is_asked(caplog):
    model = StandInClassifier()  # no runtime attribute: TensorFlow
    for asked in ("auto", "wide", "pool", "adaptive"):
        plan = plan_execution(asked, model, cores=4)
        assert plan.strategy == "batched" and plan.inference_threads == 1 and not plan.narrow
        assert "tensorflow runtime" in plan.reason
    assert "--execution pool needs LiteRT replicas" in caplog.text


def test_pool_and_adaptive_make_one_single_thread_replica_per_core():
    model = ReplicatingModel()
    pool = plan_execution("pool", model, cores=3)
    assert pool.strategy == "pool" and pool.wide is None and len(pool.narrow) == 3
    assert [replica.num_threads for replica in model.replicas] == [1, 1, 1]
    adaptive = plan_execution("adaptive", model, cores=2)
    assert adaptive.strategy == "adaptive" and adaptive.wide == model.predict and len(adaptive.narrow) == 2
    assert adaptive.describe() == {"execution": "adaptive", "execution_reason": adaptive.reason, "inference_threads": 2}


def test_wide_keeps_the_one_interpreter_and_makes_no_replica():
    model = ReplicatingModel()
    plan = plan_execution("wide", model, cores=2)
    assert plan.strategy == "wide" and plan.wide == model.predict and not plan.narrow and not model.replicas


def test_auto_stays_wide_on_one_core_or_when_replicas_cost_too_much_memory():
    model = ReplicatingModel()
    assert plan_execution("auto", model, cores=1).strategy == "wide"
    big = ReplicatingModel(model_bytes=execution.REPLICA_MEMORY_BUDGET // 2 + 1)
    plan = plan_execution("auto", big, cores=2)
    assert plan.strategy == "wide" and "MB" in plan.reason and not big.replicas


def test_auto_measures_and_reports_its_figures(monkeypatch):
    model = ReplicatingModel()
    monkeypatch.setattr(execution, "measure", lambda wide, narrow, size: _trial(2.9, 4.8))
    plan = plan_execution("auto", model, cores=2)
    assert plan.strategy == "adaptive" and plan.trial["narrow_lone_ms"] == 4.8 and len(plan.narrow) == 2
    assert "measured" in plan.reason and "wide 2.90 ms, single-thread 4.80 ms" in plan.reason


@pytest.mark.parametrize(
    ("wide", "narrow", "expected"),
    [
        (2.9, 4.8, "adaptive"),  # this machine when quiet: wide answers a lone request sooner
        (5.6, 5.0, "pool"),  # a busy machine: wide is no faster alone
        (4.3, 4.8, "pool"),  # faster, but inside the margin
    ],
)
def test_the_auto_rule_always_pools_and_adds_wide_only_when_it_is_clearly_faster_alone(wide, narrow, expected):
    plan = choose(_trial(wide, narrow), wide=lambda x: x, narrow=(lambda x: x, lambda x: x))
    assert plan.strategy == expected and len(plan.narrow) == 2
    assert (plan.wide is not None) == (expected == "adaptive")


def test_measure_runs_both_predictors_interleaved_and_returns_medians():
    calls = {"wide": 0, "narrow": 0}

    def counting(name):
        def predict(batch: np.ndarray) -> np.ndarray:
            assert batch.shape == (1, 4, 5, 3) and batch.dtype == np.float32
            calls[name] += 1
            return np.zeros((1, 2), np.float32)
        return predict

    trial = measure(counting("wide"), counting("narrow"), (4, 5), rounds=3)
    assert trial["rounds"] == 3
    assert calls == {"wide": 1 + 3, "narrow": 1 + 3}
    assert trial["wide_lone_ms"] >= 0 and trial["narrow_lone_ms"] >= 0


def test_execution_setting_from_flag_and_environment():
    assert ServerSettings().execution == "auto"
    assert build_settings(ServerSettings, {"execution": "pool"}).execution == "pool"
    assert build_settings(ServerSettings, {}, environ={"WARMSERVE_EXECUTION": "adaptive"}).execution == "adaptive"
    with pytest.raises(SettingsError, match="execution"):
        ServerSettings(execution="fast")


# -- the core gate --------------------------------------------------------------------------


def _ready(gate: CoreGate, *items: str) -> None:
    for item in items:
        gate.expect()
        gate.put(item)


def _take_in_thread(gate: CoreGate) -> tuple[threading.Thread, list]:
    taken: list = []
    thread = threading.Thread(target=lambda: taken.append(gate.take()), daemon=True)
    thread.start()
    return thread, taken


def _taken_once_released(gate: CoreGate, wide: bool) -> list:
    """What a taker gets that must wait (no core free) until the run holding the cores is released."""
    thread, taken = _take_in_thread(gate)
    thread.join(0.1)
    assert taken == []  # still waiting
    gate.release(wide)
    thread.join(5)
    return taken


def test_pool_gate_hands_out_one_item_per_free_core_in_order():
    gate = CoreGate(slots=2, adaptive=False)
    _ready(gate, "a", "b", "c")
    assert gate.take() == (["a"], False)
    assert gate.take() == (["b"], False)
    assert _taken_once_released(gate, wide=False) == [(["c"], False)]  # no core free: waits


def test_adaptive_gate_runs_a_lone_request_wide_on_every_core():
    gate = CoreGate(slots=2, adaptive=True)
    _ready(gate, "alone")
    assert gate.take() == (["alone"], True)
    _ready(gate, "next")
    # the wide run holds every core: no narrow run beside it
    assert _taken_once_released(gate, wide=True) == [(["next"], True)]


def test_adaptive_gate_runs_narrow_when_others_are_waiting_or_decoding():
    gate = CoreGate(slots=2, adaptive=True)
    _ready(gate, "a", "b")
    assert gate.take() == (["a"], False)  # another is ready
    assert gate.take() == (["b"], False)
    gate.release(False)
    gate.release(False)
    gate.expect()  # one still decoding
    _ready(gate, "c")
    assert gate.take() == (["c"], False)
    gate.release(False)
    gate.cancel()  # the decoding one failed
    _ready(gate, "d")
    assert gate.take() == (["d"], True)


def test_adaptive_gate_never_runs_wide_while_a_narrow_run_holds_a_core():
    gate = CoreGate(slots=2, adaptive=True)
    _ready(gate, "a", "b")
    assert gate.take() == (["a"], False)
    assert gate.take() == (["b"], False)
    gate.release(False)
    _ready(gate, "c")  # alone, but "b" still runs on one core
    assert gate.take() == (["c"], False)


def test_closing_the_gate_wakes_every_taker_with_none():
    gate = CoreGate(slots=2, adaptive=False)
    threads = [_take_in_thread(gate) for _ in range(3)]
    gate.close()
    for thread, taken in threads:
        thread.join(5)
        assert taken == [None]
    _ready(gate, "late")
    assert gate.take() is None


def test_gate_needs_a_slot():
    with pytest.raises(ValueError, match="slots"):
        CoreGate(slots=0, adaptive=False)


def test_pool_gate_with_max_take_batches_only_what_the_other_free_cores_leave():
    gate = CoreGate(slots=2, adaptive=False, max_take=2)
    _ready(gate, "a", "b")
    assert gate.take() == (["a"], False)  # the other core is free: "b" is left for it
    assert gate.take() == (["b"], False)
    gate.release(False)
    gate.release(False)
    _ready(gate, "c", "d", "e", "f", "g")
    assert gate.take() == (["c", "d"], False)  # more waiting than free cores: a pair
    assert gate.take() == (["e", "f"], False)
    gate.release(False)
    assert gate.take() == (["g"], False)  # never more than are waiting


def test_adaptive_gate_with_max_take_still_runs_a_lone_request_wide():
    gate = CoreGate(slots=2, adaptive=True, max_take=4)
    _ready(gate, "alone")
    assert gate.take() == (["alone"], True)


def test_taking_alone_needs_an_idle_adaptive_gate_and_holds_every_core_until_released():
    assert CoreGate(slots=2, adaptive=False).take_alone() is False  # pool: never
    gate = CoreGate(slots=2, adaptive=True)
    _ready(gate, "waiting")
    assert gate.take_alone() is False  # something is ready
    assert gate.take() == (["waiting"], True)
    assert gate.take_alone() is False  # a run holds the cores
    gate.release(True)
    gate.expect()
    assert gate.take_alone() is False  # something is decoding
    gate.cancel()
    assert gate.take_alone() is True
    _ready(gate, "next")  # arrives while the caller runs alone: waits for every core
    assert _taken_once_released(gate, wide=True) == [(["next"], True)]
    gate.close()
    assert gate.take_alone() is False


def _runner(wide_ms, prepare=None, infer=None):
    answered: list = []
    plan = execution.ExecutionPlan("adaptive", "test", wide=lambda x: x, narrow=(lambda x: x, lambda x: x),
                                   trial=_trial(wide_ms, 5.0) if wide_ms is not None else {})
    runner = execution.PoolRunner(plan, infer or (lambda items, predict: answered.append((items, predict(np.zeros(1))))),
                                  lambda: None, prepare)
    return runner, answered


def test_running_alone_uses_the_wide_predictor_on_the_calling_thread_and_frees_the_cores():
    runner, answered = _runner(wide_ms=3.0)
    assert runner.run_alone("lone", max_forward_ms=20) is True
    assert [items for items, _ in answered] == [["lone"]]
    assert runner.wide_ms is not None and runner.wide_ms < 1000  # timed anew
    assert runner.run_alone("again", max_forward_ms=20) is True  # the cores were given back


def test_running_alone_declines_without_a_short_timed_wide_pass_or_while_others_are_in():
    assert _runner(wide_ms=None)[0].run_alone("x", max_forward_ms=20) is False  # never timed yet
    assert _runner(wide_ms=50.0)[0].run_alone("x", max_forward_ms=20) is False  # too slow to hold the caller
    runner, answered = _runner(wide_ms=3.0)
    runner.expect()
    runner.put("queued")
    assert runner.run_alone("x", max_forward_ms=20) is False and answered == []
    pool = execution.PoolRunner(execution.ExecutionPlan("pool", "test", narrow=(lambda x: x,) * 2), lambda *a: None, lambda: None)
    assert pool.run_alone("x", max_forward_ms=20) is False  # no wide predictor


def test_running_alone_gives_the_cores_back_when_prepare_or_infer_fails():
    runner, answered = _runner(wide_ms=3.0, prepare=lambda item: False)  # a bad image: answered by prepare
    assert runner.run_alone("bad", max_forward_ms=20) is True and answered == []
    assert runner.run_alone("bad again", max_forward_ms=20) is True  # the cores were given back

    def failing(items, predict):
        raise RuntimeError("infer failed")

    runner, _ = _runner(wide_ms=3.0, infer=failing)
    assert runner.run_alone("x", max_forward_ms=20) is True  # logged, not raised
    assert runner.run_alone("y", max_forward_ms=20) is True  # the cores were given back


def test_gate_needs_a_positive_max_take():
    with pytest.raises(ValueError, match="max_take"):
        CoreGate(slots=2, adaptive=False, max_take=0)


def test_pool_settings_from_flag_and_environment():
    assert ServerSettings().pool_batch == 2
    assert build_settings(ServerSettings, build_parser().parse_args(["serve", "--pool-batch", "3"])).pool_batch == 3
    assert build_settings(ServerSettings, build_parser().parse_args(["serve"])).pool_batch == 2
    assert build_settings(ServerSettings, {}, environ={"WARMSERVE_POOL_BATCH": "1"}).pool_batch == 1
    with pytest.raises(SettingsError, match="pool_batch"):
        ServerSettings(pool_batch=0)
