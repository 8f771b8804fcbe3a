"""Each execution strategy in a real backend process on the default model: same answers, info says which and why, memory.

Slow: one backend start per strategy (about a second each with the converted
model cached; the first start of a fresh checkout converts it).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from model_backend.client import BackendClient
from model_backend.models.litert_runtime import cpu_count
from tests.support.backend import start_backend, stop_backend
from tests.support.helpers import CAT_CLASSES

pytestmark = pytest.mark.slow

#: the issue's ceiling for a backend serving through LiteRT
RSS_LIMIT_MB = 350


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS line")


@pytest.mark.parametrize("strategy", ["wide", "pool", "adaptive", "auto"])
def test_each_strategy_serves_the_same_answers_within_the_memory_limit(tmp_path, chelsea_png, coffee_png, strategy):
    backend = start_backend(tmp_path / "backend.log", "--execution", strategy)
    try:
        with BackendClient(backend.client_settings) as client:
            info = client.info()
            lone = client.classify(chelsea_png)
            with ThreadPoolExecutor(8) as pool:
                replies = list(pool.map(lambda i: client.classify((chelsea_png, coffee_png)[i % 2]), range(64)))
            served = client.info()
        rss_mb = _rss_mb(backend.process.pid)
    finally:
        assert stop_backend(backend) == 0
    if info["runtime"] != "litert":
        pytest.skip(f"the backend serves on {info['runtime']} here ({info['runtime_reason']})")
    cores = cpu_count()
    if cores < 2 and strategy != "wide":
        pytest.skip("one core: pool and adaptive have nothing to run side by side")
    expected = {"wide": {"wide"}, "pool": {"pool"}, "adaptive": {"adaptive"}, "auto": {"pool", "adaptive"}}[strategy]
    assert info["execution"] in expected
    assert info["inference_threads"] == (1 if info["execution"] == "wide" else cores)
    assert info["execution_reason"] and f"Execution: {info['execution']}" in backend.log_text()
    assert lone["predictions"][0]["label"] == "Egyptian cat"
    assert all(reply["predictions"][0]["index"] in (CAT_CLASSES if i % 2 == 0 else {967, 968, 504})
               for i, reply in enumerate(replies))
    if info["execution"] != "wide":  # a single-thread interpreter takes at most pool_batch waiting requests at once
        assert info["pool_batch"] == 2 and {reply["batch_size"] for reply in replies} <= {1, 2}
    assert served["requests_served"] == 65 and served["errors"] == 0
    assert rss_mb <= RSS_LIMIT_MB
