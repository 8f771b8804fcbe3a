"""The busy-cores limit's child processes (tools.bench.busy): a child that cannot start is an error that says so, and no
child outlives the measurement. The full measurement runs in the --quick bench (tests/process/test_bench.py)."""

from __future__ import annotations

import psutil
import pytest

from tools.bench.busy import measure_busy_limit


@pytest.mark.timeout(120)
def test_children_that_cannot_load_the_model_fail_the_measurement_with_a_clear_error_and_are_gone():
    before = {child.pid for child in psutil.Process().children(recursive=True)}
    with pytest.raises(RuntimeError, match=r"Expected a 'ready' line from a busy-cores child\. Received: b'' \(exit 1\)"):
        measure_busy_limit(b"not a flatbuffer", b"not a photo", preprocess_mode="torch", input_size=(224, 224),
                           max_bytes=1 << 20, max_pixels=1 << 20, cores=2, best_batch=2, rounds=1, warmup_s=0.1, window_s=0.2)
    assert {child.pid for child in psutil.Process().children(recursive=True)} <= before
