"""Accepted images kept by their sha256, so thumbnails and the monolith can use one later from any process or replica.

The classify feature keeps every image the backend accepted (:meth:`KeptUploads.keep`);
thumbnails read one back (:meth:`KeptUploads.read`) and the monolith runs on a
local file of one (:meth:`KeptUploads.local_file`), found by the sha256 a
browser sends: 64 lowercase hex digits and nothing else (:func:`valid_sha256`),
so a browser can name no other file or row. The newest :data:`KEEP_UPLOADS`
images, at most :data:`KEEP_BYTES` together, are kept; the least recently kept go first.

Two places, chosen by :func:`kept_uploads_for` from where the history lives:

- :class:`FileUploads`: files ``DATA_DIR/uploads/<sha256>.img`` (a SQLite
  history: one host, every process of it sees the folder);
- :class:`DatabaseUploads`: the history database's ``kept_uploads`` table
  (a PostgreSQL history: every dashboard replica and ``jobs-worker`` sees
  every kept image, whatever its own disk holds). The monolith runner needs
  a path, so it gets a temp file in a private folder, removed after the run.

The bounds are constants, not settings: they only cap what a shared database
or a data folder holds (200 images of at most ``--max-image-bytes`` each).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator, Protocol

import sqlalchemy as sa

#: how many images are kept, and how many bytes they may take together (the older go first)
KEEP_UPLOADS = 200
KEEP_BYTES = 500 * 1024 * 1024
SUFFIX = ".img"
_HEX = frozenset("0123456789abcdef")


def valid_sha256(sha256: object) -> bool:
    """True for 64 lowercase hex digits (the only names a kept upload has)."""
    return isinstance(sha256, str) and len(sha256) == 64 and all(c in _HEX for c in sha256)


class KeptUploads(Protocol):
    """Where accepted images are kept: keep one, read it back, a local file of it, the bounds."""

    def keep(self, upload) -> None:
        """Store ``upload.data`` under ``upload.sha256`` (idempotent: a kept one becomes the newest), then prune."""

    def read(self, sha256: str) -> bytes | None:
        """The kept image's bytes (None when none is kept, or the name is not a sha256)."""

    def contains(self, sha256: str) -> bool:
        """Whether an image is kept under this (valid) sha256."""

    def local_file(self, sha256: str) -> contextlib.AbstractContextManager[Path | None]:
        """A context giving a local file of the kept image (None if none), valid until the context exits."""

    def prune(self, max_count: int = KEEP_UPLOADS, max_bytes: int = KEEP_BYTES) -> int:
        """Drop all but the newest ``max_count`` images that fit in ``max_bytes`` together; how many went."""


def _newest_within(items: list[tuple[str, int]], max_count: int, max_bytes: int) -> set[str]:
    """From (name, size) newest first: the names to keep (at most max_count, at most max_bytes together)."""
    keep, total = set(), 0
    for name, size in items[:max_count]:
        if total + size > max_bytes:
            break
        keep.add(name)
        total += size
    return keep


class FileUploads:
    """Kept uploads as files ``<folder>/<sha256>.img`` (newest by modification time)."""

    def __init__(self, folder: Path, max_count: int = KEEP_UPLOADS, max_bytes: int = KEEP_BYTES) -> None:
        self.folder = Path(folder)
        self.max_count, self.max_bytes = max_count, max_bytes

    def path(self, sha256: str) -> Path | None:
        """The kept file for a sha256 (validated), or None."""
        if not valid_sha256(sha256):
            return None
        path = self.folder / f"{sha256}{SUFFIX}"
        return path if path.is_file() else None

    def keep(self, upload) -> Path:
        if not valid_sha256(upload.sha256):
            raise ValueError("A kept upload is named by its sha256 (64 lowercase hex digits)")
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{upload.sha256}{SUFFIX}"
        now = time.time_ns()  # set explicitly: the file system's own clock ticks too coarsely to order keeps
        if path.exists():
            os.utime(path, ns=(now, now))
        else:
            tmp = path.with_suffix(f".tmp{time.monotonic_ns()}")
            tmp.write_bytes(upload.data)
            os.utime(tmp, ns=(now, now))
            tmp.replace(path)
            self.prune(self.max_count, self.max_bytes)
        return path

    def read(self, sha256: str) -> bytes | None:
        path = self.path(sha256)
        try:
            return None if path is None else path.read_bytes()
        except OSError:  # pruned between the look-up and the read
            return None

    def contains(self, sha256: str) -> bool:
        return self.path(sha256) is not None

    @contextlib.contextmanager
    def local_file(self, sha256: str) -> Iterator[Path | None]:
        yield self.path(sha256)

    def prune(self, max_count: int = KEEP_UPLOADS, max_bytes: int = KEEP_BYTES) -> int:
        files = []
        for path in self.folder.glob(f"*{SUFFIX}"):
            try:
                stat = path.stat()
            except OSError:
                continue
            files.append((stat.st_mtime_ns, path.name, stat.st_size))
        files.sort(reverse=True)
        keep = _newest_within([(name, size) for _mtime, name, size in files], max_count, max_bytes)
        gone = [name for _mtime, name, _size in files if name not in keep]
        for name in gone:
            (self.folder / name).unlink(missing_ok=True)
        return len(gone)


class DatabaseUploads:
    """Kept uploads as rows of the history database's ``kept_uploads`` table (newest by ``last_used``).

    ``engine`` is called for each use (the history store's fork-safe engine property).
    """

    def __init__(self, engine: Callable[[], sa.Engine], max_count: int = KEEP_UPLOADS,
                 max_bytes: int = KEEP_BYTES) -> None:
        from ..history.schema import kept_uploads

        self._engine, self.table = engine, kept_uploads
        self.max_count, self.max_bytes = max_count, max_bytes

    def _write(self) -> sa.Connection:
        from ..history.engine import IMMEDIATE

        return self._engine().connect().execution_options(**IMMEDIATE)

    def keep(self, upload) -> None:
        if not valid_sha256(upload.sha256):
            raise ValueError("A kept upload is named by its sha256 (64 lowercase hex digits)")
        table, now = self.table, time.time()
        with self._write() as conn, conn.begin():
            touched = conn.execute(table.update().where(table.c.sha256 == upload.sha256).values(last_used=now))
            if touched.rowcount:
                return
            insert = _insert_for(conn.dialect.name)(table).values(
                sha256=upload.sha256, data=upload.data, name=(upload.name or "")[:255], size=len(upload.data),
                last_used=now)
            # another replica may keep the same image at the same moment
            conn.execute(insert.on_conflict_do_update(index_elements=[table.c.sha256], set_={"last_used": now}))
            self._prune(conn, self.max_count, self.max_bytes)

    def read(self, sha256: str) -> bytes | None:
        if not valid_sha256(sha256):
            return None
        with self._engine().connect() as conn:
            return conn.execute(sa.select(self.table.c.data).where(self.table.c.sha256 == sha256)).scalar()

    def contains(self, sha256: str) -> bool:
        if not valid_sha256(sha256):
            return False
        with self._engine().connect() as conn:
            found = conn.execute(sa.select(self.table.c.sha256).where(self.table.c.sha256 == sha256)).first()
        return found is not None

    @contextlib.contextmanager
    def local_file(self, sha256: str) -> Iterator[Path | None]:
        data = self.read(sha256)
        if data is None:
            yield None
            return
        with tempfile.TemporaryDirectory(prefix="warmserve-kept-") as folder:  # mode 0700: this user only
            path = Path(folder) / f"{sha256}{SUFFIX}"
            path.write_bytes(data)
            yield path

    def prune(self, max_count: int = KEEP_UPLOADS, max_bytes: int = KEEP_BYTES) -> int:
        with self._write() as conn, conn.begin():
            return self._prune(conn, max_count, max_bytes)

    def _prune(self, conn: sa.Connection, max_count: int, max_bytes: int) -> int:
        table = self.table
        rows = conn.execute(sa.select(table.c.sha256, table.c.size)
                            .order_by(table.c.last_used.desc(), table.c.sha256)).all()
        keep = _newest_within([(sha, size) for sha, size in rows], max_count, max_bytes)
        gone = [sha for sha, _size in rows if sha not in keep]
        if gone:
            conn.execute(table.delete().where(table.c.sha256.in_(gone)))
        return len(gone)


def _insert_for(dialect: str):
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def kept_uploads_for(uploads_dir: Path, store=None) -> KeptUploads:
    """The kept uploads that go with a history: its database on PostgreSQL (shared by every replica), else
    files in ``uploads_dir`` (a SQLite history is one host's anyway)."""
    if store is not None and getattr(store, "dialect", None) == "postgresql":
        return DatabaseUploads(lambda: store.engine)
    return FileUploads(uploads_dir)


def as_kept_uploads(place: "KeptUploads | Path") -> KeptUploads:
    """``place`` itself, or files in it when it is a folder."""
    return FileUploads(place) if isinstance(place, (str, Path)) else place


# The functions earlier code and tests call (files in a folder).

def keep_upload(uploads_dir: Path, upload) -> Path:
    """Keep ``upload`` as a file in ``uploads_dir`` (see :meth:`FileUploads.keep`)."""
    return FileUploads(uploads_dir).keep(upload)


def kept_upload(uploads_dir: Path, sha256: str) -> Path | None:
    """The kept file in ``uploads_dir`` for a sha256 (validated: hex only), or None."""
    return FileUploads(uploads_dir).path(sha256)
