"""The monolith cap in Redis (``--redis``): N at once and M waiting across replicas, leases that free a dead one's slot.

Each test runs a real redis-server of its own (tests/support/redis_server.py).
"Replicas" are separate processes, each with its own RedisMonolithQueue, as
dashboards on different hosts would be; the monolith is the stand-in command of
tests/process/test_monolith_cap.py, run through the real runner.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading

import pytest

from dashboard.jobs.redis_slots import JobsUnavailable, RedisMonolithQueue
from dashboard.monolith.queue import QueueFull
from tests.process.test_monolith_cap import STANDIN, most_at_once, read_jsonl
from tests.support.helpers import ROOT, free_port, wait_for

POLL_S = 0.02

#: one replica: takes a slot of the cap its settings name (monolith_slots), runs the stand-in through the real runner
REPLICA = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from dashboard.monolith import runner as monolith_runner
    from dashboard.monolith.queue import QueueFull, monolith_slots
    from dashboard.settings import DashboardSettings
    redis_url, data_dir, slots, standin_log, hold, standin = sys.argv[1:7]
    monolith_runner.monolith_command = lambda path, model: [sys.executable, "-c", standin, standin_log, hold]
    settings = DashboardSettings(redis=redis_url, data_dir=Path(data_dir), monolith_concurrency=int(slots),
                                 monolith_queue=8)
    cap = monolith_slots(settings)
    cap.poll_s = 0.02
    try:
        slot = cap.acquire()
    except QueueFull as refusal:
        print(json.dumps({"refused": refusal.message}))
        sys.exit(0)
    with slot:
        result, wall_ms = monolith_runner.run_monolith_on_file(Path(data_dir) / "image", model="m", pass_fds=(slot.fd,))
    print(json.dumps(result))
""")

#: a replica that takes a slot (or a place in line) with a 1 s lease, says so, and sleeps until it is killed
HOLDER = textwrap.dedent("""
    import sys, time
    from dashboard.jobs.redis_slots import RedisMonolithQueue
    queue = RedisMonolithQueue(sys.argv[1], slots=1, max_waiting=1, poll_s=0.02, lease_s=1.0)
    slot = queue.acquire(on_wait=lambda place: print("waiting", place.position, flush=True))
    print("holding", flush=True)
    time.sleep(600)
""")


def queue_on(url: str, **kwargs) -> RedisMonolithQueue:
    kwargs.setdefault("poll_s", POLL_S)
    return RedisMonolithQueue(url, **kwargs)


def test_at_most_n_run_a_bounded_line_waits_in_order_and_the_next_is_refused(redis_url):
    queue = queue_on(redis_url, slots=2, max_waiting=2)
    held = [queue.acquire(), queue.acquire()]
    assert queue.running() == 2
    places: dict[int, list[tuple[int, int]]] = {0: [], 1: []}
    got: list[int] = []
    done = threading.Event()

    def wait_in_line(i: int) -> None:
        with queue_on(redis_url, slots=2, max_waiting=2).acquire(
                on_wait=lambda place: places[i].append((place.position, place.running))):
            got.append(i)
            done.wait(10)

    threads = []
    for i in (0, 1):
        threads.append(threading.Thread(target=wait_in_line, args=(i,), daemon=True))
        threads[-1].start()
        wait_for(lambda i=i: places[i], what=f"waiter {i} in line")
    assert places[0][0] == (1, 2) and places[1][0] == (2, 2) and queue.waiting() == 2

    with pytest.raises(QueueFull) as refused:  # a third replica's caller: the line is full
        queue_on(redis_url, slots=2, max_waiting=2).acquire()
    assert refused.value.message == "2 monolith runs are already waiting; try again in a minute."
    assert refused.value.code == "overloaded"

    held[0].release()
    wait_for(lambda: got == [0], what="the first in line to get the freed slot")
    assert queue.running() == 2 and queue.waiting() == 1
    held[1].release()
    wait_for(lambda: got == [0, 1], what="the second in line to get the next freed slot")
    assert queue.running() == 2 and queue.waiting() == 0
    done.set()
    for thread in threads:
        thread.join(10)
    assert got == [0, 1] and queue.running() == 0 and queue.waiting() == 0


def test_no_waiting_allowed_refuses_while_busy_with_todays_message(redis_url):
    queue = queue_on(redis_url, slots=1, max_waiting=0)
    with queue.acquire():
        with pytest.raises(QueueFull, match="^A monolith run is already in progress and no more may wait; try again"):
            queue.acquire()
    queue.acquire().release()
    assert queue.running() == 0


@pytest.mark.parametrize("slots", [1, 2])
def test_two_replicas_never_run_more_than_the_cap_together(redis_url, tmp_path, slots):
    def replica(i: int) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-c", REPLICA, redis_url, str(tmp_path / f"replica-{i % 2}"), str(slots),
             str(tmp_path / "runs.jsonl"), "0.3", STANDIN],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})

    callers = [replica(i) for i in range(5)]  # callers 0, 2, 4 on replica 0; 1, 3 on replica 1
    for process in callers:
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err.decode()
        assert json.loads(out.decode().strip().splitlines()[-1])["model"] == "stand-in"  # nobody refused
    runs = read_jsonl(tmp_path / "runs.jsonl")
    assert len(runs) == 10 and most_at_once(runs) == slots
    assert queue_on(redis_url).running() == 0


def test_a_killed_replicas_slot_and_place_free_themselves_when_their_lease_runs_out(redis_url):
    def holder() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-c", HOLDER, redis_url], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})

    running, waiting = holder(), None
    try:
        assert running.stdout.readline().strip() == "holding"
        waiting = holder()
        assert waiting.stdout.readline().strip() == "waiting 1"
        queue = queue_on(redis_url, slots=1, max_waiting=1)
        with pytest.raises(QueueFull, match="1 monolith run is already waiting"):
            queue.acquire()
        waiting.send_signal(signal.SIGKILL)  # the waiter's replica dies: its place goes when its lease runs out
        waiting.wait(10)
        wait_for(lambda: queue.waiting() == 0, timeout_s=10, what="the dead waiter's place to expire")
        assert queue.running() == 1  # the live holder keeps renewing its lease well past 1 s
        running.send_signal(signal.SIGKILL)  # the holder's replica dies without releasing anything
        running.wait(10)
        assert queue.running() == 1  # not yet: nobody released it
        wait_for(lambda: queue.running() == 0, timeout_s=10, what="the dead holder's lease to run out")
        with queue.acquire() as slot:
            assert slot.fd >= 0 and queue.running() == 1
    finally:
        for process in (running, waiting):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(10)


def test_an_unreachable_redis_is_refused_at_once_with_a_clear_message():
    queue = RedisMonolithQueue(f"redis://127.0.0.1:{free_port()}/0", slots=1, max_waiting=1)
    with pytest.raises(JobsUnavailable) as refused:
        queue.acquire()
    assert refused.value.message == ("The job queue (Redis) cannot be reached, so no monolith run can start; "
                                     "try again in a minute.")
    assert isinstance(refused.value, QueueFull)  # the view shows it as a refusal, as it does a full line
