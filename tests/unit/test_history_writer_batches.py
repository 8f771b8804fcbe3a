"""dashboard/history/writer.py gathers rows that arrive close together into one transaction (one ``write`` call).

A transaction costs the web tier much more CPU than a row, so the writer waits up to ``linger_s`` after a
batch's first row; a reader (flush) or close never waits for that.
"""

from __future__ import annotations

import threading

from dashboard.history.writer import MAX_BATCH, HistoryWriter

#: longer than any test: only flush/close can end the wait
FOREVER_S = 600.0


class Recorder:
    """A store's ``write``: keeps each batch it is given."""

    def __init__(self) -> None:
        self.batches: list[list[dict]] = []
        self.lock = threading.Lock()

    def __call__(self, rows) -> None:
        with self.lock:
            self.batches.append(list(rows))


def test_rows_queued_together_are_one_transaction_and_a_reader_does_not_wait_for_the_linger():
    write = Recorder()
    writer = HistoryWriter(write, 1000, linger_s=FOREVER_S)
    try:
        for n in range(50):
            assert writer.submit({"n": n})
        assert writer.flush(timeout_s=30)  # the writer was lingering; flush hurries it
        assert [[row["n"] for row in batch] for batch in write.batches] == [list(range(50))]
        assert writer.pending == 0
    finally:
        assert writer.close(timeout_s=30)


def test_after_a_full_batch_the_writer_writes_on_without_lingering():
    write = Recorder()
    writer = HistoryWriter(write, 10 * MAX_BATCH, linger_s=FOREVER_S)
    try:
        total = 2 * MAX_BATCH + 10
        for n in range(total):
            assert writer.submit({"n": n})
        # flush hurries the writer once: the batches after the first full one must not wait for the linger
        assert writer.flush(timeout_s=30), f"still {writer.pending} rows queued"
        assert [len(batch) for batch in write.batches] == [MAX_BATCH, MAX_BATCH, 10]
        assert [row["n"] for batch in write.batches for row in batch] == list(range(total))
    finally:
        assert writer.close(timeout_s=30)


def test_close_writes_what_is_lingering_at_once():
    write = Recorder()
    writer = HistoryWriter(write, 1000, linger_s=FOREVER_S)
    for n in range(3):
        writer.submit({"n": n})
    assert writer.close(timeout_s=30)
    assert [row["n"] for batch in write.batches for row in batch] == [0, 1, 2]
    assert not writer.submit({"n": 3})  # closed: the store writes it directly

