"""Kept uploads (dashboard/common/kept_uploads.py) on files and in the history database (here a SQLite file;
PostgreSQL: tests/process/test_kept_uploads_postgres.py): keep, read, a local file, prune by count and bytes,
names that are not a sha256 refused, and the schema step that adds the table to an existing history."""

from __future__ import annotations

import sqlite3

import pytest

from dashboard.classify.uploads import Upload
from dashboard.common.kept_uploads import (KEEP_BYTES, KEEP_UPLOADS, DatabaseUploads, FileUploads, kept_uploads_for)
from dashboard.history.migrations import SCHEMA_VERSION
from dashboard.history.store import HistoryStore

BAD_NAMES = ("../../etc/passwd", "z" * 64, "A" * 64, "ab" * 31 + "a", "ab" * 32 + "\n", "", "' OR 1=1 --")


@pytest.fixture(params=["files", "database"])
def kept(request, tmp_path):
    if request.param == "files":
        yield FileUploads(tmp_path / "uploads")
        return
    store = HistoryStore(tmp_path / "history.sqlite3")
    yield DatabaseUploads(lambda: store.engine)
    store.dispose()


def upload(n: int, size: int = 10) -> Upload:
    return Upload(f"img-{n}.png", f"{n:0{size}d}".encode())


def test_an_image_is_kept_by_its_sha256_and_read_back(kept):
    image = upload(1)
    assert kept.read(image.sha256) is None and not kept.contains(image.sha256)
    kept.keep(image)
    kept.keep(image)  # idempotent
    assert kept.read(image.sha256) == image.data and kept.contains(image.sha256)
    with kept.local_file(image.sha256) as path:
        assert path.read_bytes() == image.data
    with kept.local_file("ab" * 32) as path:
        assert path is None


def test_the_database_gives_the_monolith_a_private_temp_file_removed_afterwards(tmp_path):
    store = HistoryStore(tmp_path / "history.sqlite3")
    kept, image = DatabaseUploads(lambda: store.engine), upload(4)
    kept.keep(image)
    with kept.local_file(image.sha256) as path:
        assert path.read_bytes() == image.data and (path.parent.stat().st_mode & 0o777) == 0o700
    assert not path.exists() and not path.parent.exists()
    store.dispose()


def test_names_that_are_not_a_sha256_are_refused(kept, tmp_path):
    image = upload(2)
    kept.keep(image)
    (tmp_path / "secret.img").write_bytes(b"secret")
    for name in BAD_NAMES:
        assert kept.read(name) is None and not kept.contains(name)
        with kept.local_file(name) as path:
            assert path is None
    with pytest.raises(ValueError, match="sha256"):
        kept.keep(_named("../secret", b"x"))


def _named(sha256: str, data: bytes):
    class Named:
        pass
    named = Named()
    named.sha256, named.data, named.name = sha256, data, "x.png"
    return named


def test_prune_keeps_the_newest_by_count_then_by_bytes(kept):
    images = [upload(n, size=100) for n in range(8)]
    for image in images:
        kept.keep(image)
    kept.keep(images[0])  # kept again: now the newest
    assert kept.prune(max_count=5, max_bytes=10_000) == 3
    newest = [images[0], images[7], images[6], images[5], images[4]]
    assert [kept.contains(i.sha256) for i in images] == [i in newest for i in images]
    assert kept.prune(max_count=5, max_bytes=250) == 3  # 100 bytes each: two fit
    assert [i for i in images if kept.contains(i.sha256)] == [images[0], images[7]]


def test_keeping_prunes_to_the_bounds(tmp_path):
    store = HistoryStore(tmp_path / "history.sqlite3")
    for kept in (FileUploads(tmp_path / "uploads", max_count=3, max_bytes=1000),
                 DatabaseUploads(lambda: store.engine, max_count=3, max_bytes=1000)):
        images = [upload(n, size=300) for n in range(5)]
        for image in images:
            kept.keep(image)
        # the newest three: 900 bytes, within both bounds
        assert [kept.contains(i.sha256) for i in images] == [False, False, True, True, True]
        kept.keep(upload(9, size=600))  # 600 + 300 fit 1000 bytes: one older image stays, the newest
        assert [kept.contains(i.sha256) for i in images] == [False, False, False, False, True]
    store.dispose()
    assert (KEEP_UPLOADS, KEEP_BYTES) == (200, 500 * 1024 * 1024)


def test_the_history_decides_where_uploads_are_kept(tmp_path):
    store = HistoryStore(tmp_path / "history.sqlite3")
    kept = kept_uploads_for(tmp_path / "uploads", store)
    assert isinstance(kept, FileUploads) and kept.folder == tmp_path / "uploads"  # SQLite: one host's files
    assert isinstance(kept_uploads_for(tmp_path / "uploads"), FileUploads)
    store.dispose()


def test_the_schema_step_adds_the_table_to_an_existing_history_in_place(tmp_path):
    path = tmp_path / "v2.sqlite3"
    HistoryStore(path).add({"kind": "service", "ok": True, "latency_ms": 4.0, "image": "old.png"})
    with sqlite3.connect(path) as conn:  # a history at schema version 2, as the previous dashboard left it
        conn.execute("DROP TABLE kept_uploads")
        conn.execute("DELETE FROM schema_version WHERE version > 2")
    store = HistoryStore(path)
    with sqlite3.connect(path) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY version")]
        columns = [r[1] for r in conn.execute("PRAGMA table_info(kept_uploads)")]
    assert SCHEMA_VERSION >= 3 and versions == list(range(1, SCHEMA_VERSION + 1))
    assert columns == ["sha256", "data", "name", "size", "last_used"]
    assert [r["image"] for r in store.recent()] == ["old.png"]
    kept = DatabaseUploads(lambda: store.engine)
    kept.keep(upload(3))
    assert kept.read(upload(3).sha256) == upload(3).data
    store.dispose()
