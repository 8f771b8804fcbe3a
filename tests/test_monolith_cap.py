"""The monolith cap: N runs at once across processes, a bounded line in order, nothing leaked by SIGKILL.

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
import threading
import time
from pathlib import Path

import pytest

from dashboard.classify.uploads import Upload
from dashboard.common.kept_uploads import keep_upload
from dashboard.history.records import MONOLITH, service_record
from dashboard.history.store import HistoryStore
from dashboard.monolith import controller
from dashboard.monolith.queue import MonolithQueue, QueueFull, QueuePlace, full_message, ordinal

ROOT = Path(__file__).resolve().parent.parent
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


def wait_for(predicate, timeout_s: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


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


# --- the line itself, in one process (threads hold their own descriptors, so they compete like processes) ---


def test_a_full_line_is_refused_at_once_with_a_clear_message(tmp_path):
    queue = MonolithQueue(tmp_path / "queue", slots=1, max_waiting=2, poll_s=POLL_S)
    held = queue.acquire()
    places: dict[int, list[int]] = {0: [], 1: []}
    got = []

    def wait_in_line(i: int) -> None:
        with queue.acquire(on_wait=lambda place: places[i].append(place.position)):
            got.append(i)

    threads = []
    for i in (0, 1):
        threads.append(threading.Thread(target=wait_in_line, args=(i,), daemon=True))
        threads[-1].start()
        wait_for(lambda i=i: places[i], what=f"waiter {i} in line")
    assert queue.waiting() == 2 and places[0][0] == 1 and places[1][0] == 2

    started = time.monotonic()
    with pytest.raises(QueueFull) as refused:
        queue.acquire()
    assert time.monotonic() - started < 2  # at once, not after waiting
    assert refused.value.message == "2 monolith runs are already waiting; try again in a minute."
    assert refused.value.code == "overloaded"

    held.release()
    for thread in threads:
        thread.join(10)
    assert got == [0, 1] and queue.running() == 0 and queue.waiting() == 0


def test_no_waiting_allowed_refuses_while_busy_and_runs_when_free(tmp_path):
    queue = MonolithQueue(tmp_path / "queue", slots=1, max_waiting=0)
    with queue.acquire():
        with pytest.raises(QueueFull, match="already in progress"):
            queue.acquire()
    queue.acquire().release()


def test_place_texts_and_ordinals():
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111)] == \
        ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th"]
    assert QueuePlace(position=2, running=1, slots=1).text() == "2nd in line, 2 runs ahead"
    assert QueuePlace(position=1, running=1, slots=1).text() == "1st in line, 1 run ahead"
    assert full_message(1, 1) == "1 monolith run is already waiting; try again in a minute."
    assert full_message(3, 1) == "3 monolith runs are already waiting; try again in a minute."


# --- through the view: what the user sees, what is recorded -----------------------------------------


class StandInRunner:
    """Replaces run_monolith_on_file: remembers its calls, optionally waits for a signal before answering."""

    def __init__(self, release: threading.Event | None = None):
        self.calls: list[dict] = []
        self.release = release

    def __call__(self, path, **kwargs):
        self.calls.append({"path": path, **kwargs})
        kwargs["on_progress"](0.0)
        if self.release is not None:
            self.release.wait(10)
        return {"model": kwargs["model"], "predictions": [{"index": 1, "label": "one", "p": 1.0}],
                "timings_ms": {"import": 1.0, "model_load": 1.0, "preprocess": 1.0, "inference": 1.0, "total": 4.0}}, 5.0


@pytest.fixture
def kept(dash_settings):
    settings = dash_settings(monolith_concurrency=1, monolith_queue=1, monolith_model="efficientnet-lite0")
    store = HistoryStore(settings.db_path)
    upload = Upload("cat.png", b"not really an image, never decoded here")
    keep_upload(settings.uploads_dir, upload)
    store.add(service_record("cat.png", upload.sha256, {"predictions": []}, 10.0))
    return settings, store, upload.sha256


def text_of(component) -> str:
    return json.dumps(component.to_plotly_json(), default=lambda o: o.to_plotly_json(), ensure_ascii=False)


def test_the_view_shows_the_place_in_line_then_runs_and_a_refusal_is_not_recorded(kept):
    settings, store, sha = kept
    queue = MonolithQueue(settings.data_dir / "monolith-queue", slots=1, max_waiting=1, poll_s=POLL_S)
    assert controller.monolith_queue(settings).folder == queue.folder  # the view uses this shared folder
    release = threading.Event()
    first_runner, second_runner = StandInRunner(release), StandInRunner()
    progress: list[str] = []
    panels = []
    first = threading.Thread(target=lambda: panels.append(controller.run_monolith_view(settings, store, sha, runner=first_runner)))
    first.start()
    wait_for(lambda: first_runner.calls, what="the first run to start")
    second = threading.Thread(target=lambda: panels.append(
        controller.run_monolith_view(settings, store, sha, progress.append, runner=second_runner, queue=queue)))
    second.start()
    wait_for(lambda: progress, what="the second caller's place in line")
    assert "1st in line, 1 run ahead" in progress[0]

    refused = controller.run_monolith_view(settings, store, sha, runner=StandInRunner())
    assert "1 monolith run is already waiting; try again in a minute." in text_of(refused)

    release.set()
    first.join(10)
    second.join(10)
    assert len(second_runner.calls) == 1 and "Running the monolith on cat.png" in progress[-1]
    rows = store.recent(kind=MONOLITH)
    assert len(rows) == 2 and all(r["ok"] == 1 for r in rows)  # the refusal left no row behind
    assert store.summary()[MONOLITH]["errors"] == 0
