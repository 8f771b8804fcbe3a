"""The paired rounds' in-process request child (tools.bench.inprocess): a child that cannot load its model fails the
rounds with a clear error and is gone. The rounds themselves run in the --quick bench (tests/process/test_bench.py)."""

from __future__ import annotations

import psutil
import pytest

from tools.bench.inprocess import InProcessRequests
from tools.bench.plan import BenchError


@pytest.mark.timeout(120)
def test_a_child_that_cannot_load_its_model_fails_with_a_clear_error_and_is_gone(tmp_path):
    before = {child.pid for child in psutil.Process().children(recursive=True)}
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"not a photo")
    with open(tmp_path / "child.log", "wb") as log, pytest.raises(
            BenchError, match=r"Expected a 'ready' line from the in-process request child\. Received: b'' \(exit 1\)"):
        InProcessRequests(["--model", "no-such-model"], photo, tmp_path / "model.tflite", log)
    assert {child.pid for child in psutil.Process().children(recursive=True)} <= before
    assert "no-such-model" in (tmp_path / "child.log").read_text()
