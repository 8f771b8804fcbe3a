"""The monolith cap across processes: N runs at once, a bounded line in order, nothing leaked by SIGKILL.

The line in one process and the view are in tests/unit/test_monolith_cap.py.

The monolith itself is replaced by a stand-in command (a few lines of Python that
record when they start and end), run through the real runner, queue and view.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dashboard.monolith.queue import MonolithQueue, QueueFull
from tests.support.helpers import ROOT, wait_for

POLL_S = 0.02

#: the stand-in monolith: records its pid, start and end in LOG, prints a monolith-like JSON result
STANDIN = textwrap.dedent("""
    import json, os, sys, time
    log, hold = sys.argv[1], float(sys.argv[2])
    start = time.time()
    with open(log, "a") as f:
        f.write(json.dumps({"event": "start", "pid": os.getpid(), "t": start}) + "\\n")
    time.sleep(hold)
    with open(log, "a") as f:
        f.write(json.dumps({"event": "end", "pid": os.getpid(), "t": time.time()}) + "\\n")
    print(json.dumps({"model": "stand-in", "predictions": [{"index": 1, "label": "one", "p": 1.0}],
                      "timings_ms": {"import": 1.0, "model_load": 1.0, "preprocess": 1.0, "inference": 1.0, "total": 4.0}}))
""")

#: one dashboard process: waits in the shared queue, then runs the stand-in through the real runner
CALLER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from dashboard.monolith import runner as monolith_runner
    from dashboard.monolith.queue import MonolithQueue, QueueFull
    folder, slots, waiting, places_log, standin_log, hold = sys.argv[1:7]
    monolith_runner.monolith_command = lambda path, model: [sys.executable, "-c", sys.argv[7], standin_log, hold]
    queue = MonolithQueue(folder, slots=int(slots), max_waiting=int(waiting), poll_s=0.02)

    def note(place):
        with open(places_log, "a") as f:
            f.write(json.dumps({"position": place.position, "running": place.running}) + "\\n")

    try:
        slot = queue.acquire(on_wait=note)
    except QueueFull as refusal:
        print(json.dumps({"refused": refusal.message}))
        sys.exit(0)
    with open(places_log, "a") as f:
        f.write(json.dumps({"acquired": time.time()}) + "\\n")
    with slot:
        result, wall_ms = monolith_runner.run_monolith_on_file(Path(folder) / "image", model="m", pass_fds=(slot.fd,))
    print(json.dumps(result))
""")


def start_caller(tmp_path: Path, name: str, slots: int = 1, waiting: int = 8, hold: float = 0.3) -> tuple[subprocess.Popen, Path]:
    places = tmp_path / f"places-{name}.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-c", CALLER, str(tmp_path / "queue"), str(slots), str(waiting), str(places),
         str(tmp_path / "runs.jsonl"), str(hold), STANDIN],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return process, places


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def places_of(path: Path) -> list[dict]:
    """The places in line a waiter reported, oldest first."""
    return [r for r in read_jsonl(path) if "position" in r]


def acquired_at(path: Path) -> float:
    [record] = [r for r in read_jsonl(path) if "acquired" in r]
    return record["acquired"]


def most_at_once(runs: list[dict]) -> int:
    """The largest number of stand-in monoliths alive at the same moment."""
    events = sorted((r["t"], 1 if r["event"] == "start" else -1) for r in runs)
    alive = peak = 0
    for _, step in sorted(events, key=lambda e: (e[0], e[1])):  # an end at the same instant comes first
        alive += step
        peak = max(peak, alive)
    return peak


def finish(process: subprocess.Popen, timeout_s: float = 30) -> dict:
    out, err = process.communicate(timeout=timeout_s)
    assert process.returncode == 0, err.decode()
    return json.loads(out.decode().strip().splitlines()[-1])


# --- across processes -------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("slots", [1, 2])
def test_never_more_runs_at_once_than_the_cap_across_processes(tmp_path, slots):
    callers = [start_caller(tmp_path, str(i), slots=slots) for i in range(5)]
    results = [finish(process) for process, _ in callers]
    assert all(r["model"] == "stand-in" for r in results), results  # nobody was refused: the line holds 8
    runs = read_jsonl(tmp_path / "runs.jsonl")
    assert len(runs) == 10  # five starts, five ends
    assert most_at_once(runs) == slots


@pytest.mark.slow
def test_a_sigkilled_holder_frees_its_slot(tmp_path):
    holder, _ = start_caller(tmp_path, "holder", hold=60)
    wait_for(lambda: read_jsonl(tmp_path / "runs.jsonl"), what="the holder's stand-in to start")
    queue = MonolithQueue(tmp_path / "queue", slots=1, max_waiting=0, poll_s=POLL_S)
    assert queue.running() == 1
    with pytest.raises(QueueFull):
        queue.acquire()
    [started] = read_jsonl(tmp_path / "runs.jsonl")

    holder.send_signal(signal.SIGKILL)
    holder.wait(10)
    # The stand-in monolith it started still runs, and still counts: it holds the slot's descriptor.
    assert queue.running() == 1
    os.kill(started["pid"], signal.SIGKILL)
    slot = wait_for(lambda: _try(queue), timeout_s=2, what="the slot to come free")
    slot.release()
    holder.communicate()


def _try(queue: MonolithQueue):
    try:
        return queue.acquire()
    except QueueFull:
        return None


@pytest.mark.slow
def test_the_line_is_reported_and_served_in_order_and_a_killed_waiter_leaves_it(tmp_path):
    queue = MonolithQueue(tmp_path / "queue", slots=1, max_waiting=8, poll_s=POLL_S)
    held = queue.acquire()
    waiters = []
    for name in ("a", "b", "c", "d"):  # one after another, so the order of arrival is known
        process, places = start_caller(tmp_path, name)
        wait_for(lambda places=places: places_of(places), what=f"waiter {name} to report its place")
        waiters.append((name, process, places))
    assert [places_of(places)[0]["position"] for _, _, places in waiters] == [1, 2, 3, 4]
    assert all(places_of(places)[0]["running"] == 1 for _, _, places in waiters)

    # The second waiter is killed: the ones behind it move up.
    _, killed, _ = waiters.pop(1)
    killed.send_signal(signal.SIGKILL)
    killed.wait(10)
    wait_for(lambda: places_of(waiters[1][2])[-1]["position"] == 2 and places_of(waiters[2][2])[-1]["position"] == 3,
             what="the waiters behind the killed one to move up")
    assert queue.waiting() == 3

    held.release()
    for _, process, _ in waiters:
        assert finish(process)["model"] == "stand-in"
    runs = read_jsonl(tmp_path / "runs.jsonl")
    assert len(runs) == 6 and most_at_once(runs) == 1
    served = sorted(waiters, key=lambda waiter: acquired_at(waiter[2]))
    assert [name for name, _, _ in served] == ["a", "c", "d"]  # first come, first served
