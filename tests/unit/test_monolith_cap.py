"""The monolith cap in one process: a bounded line (threads hold their own descriptors, so they compete like
processes), its texts, and what the user sees through the view.

Runs across real processes (the cap, SIGKILL, the order of the line) are in tests/process/test_monolith_cap.py.
"""

from __future__ import annotations

import threading
import time

import pytest

from dashboard.classify.uploads import Upload
from dashboard.common.kept_uploads import keep_upload
from dashboard.history.records import MONOLITH, service_record
from dashboard.history.store import HistoryStore
from dashboard.monolith import controller
from dashboard.monolith.queue import MonolithQueue, QueueFull, QueuePlace, full_message, ordinal
from tests.support.helpers import text_of, wait_for


POLL_S = 0.02


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
