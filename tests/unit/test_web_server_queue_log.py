"""dashboard/web/server.py's QueueDepthLog: waitress's per-request queue warning becomes one line a period."""

from __future__ import annotations

import logging

from dashboard.web.server import FastLaneDispatcher, QueueDepthLog


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_of_queue_warnings_is_one_line_then_a_summary(caplog):
    clock = Clock()
    log = QueueDepthLog(logging.getLogger("waitress.queue"), period_s=10, clock=clock)
    with caplog.at_level(logging.WARNING, logger="waitress.queue"):
        for depth in (1, 5, 9, 3):  # what waitress calls for four queued requests
            log.warning("Task queue depth is %d", depth)
        assert [r.getMessage() for r in caplog.records] == ["Task queue depth is 1"]
        clock.now += 10
        log.warning("Task queue depth is %d", 2)
    assert len(caplog.records) == 2
    summary = caplog.records[1].getMessage()
    assert summary.startswith("Task queue depth is 2 (3 more requests waited") and "deepest queue 9" in summary
    assert "--threads" in summary


def test_both_thread_pools_use_it():
    dispatcher = FastLaneDispatcher(2, fast_threads=1)
    try:
        assert isinstance(dispatcher.queue_logger, QueueDepthLog)
        assert isinstance(dispatcher.fast.queue_logger, QueueDepthLog)
    finally:
        dispatcher.shutdown()
