"""Accepted images kept on disk by their sha256, so the monolith can be run on one later from any worker process.

The classify feature keeps every image the backend accepted (``keep_upload``);
the monolith feature finds one by the sha256 a browser sends (``kept_upload``,
which accepts 64 lowercase hex digits and nothing else, so a browser can name
no other file). At most :data:`KEEP_UPLOADS` are kept, the least recently used go first.
"""

from __future__ import annotations

import time
from pathlib import Path

KEEP_UPLOADS = 200
SUFFIX = ".img"


def keep_upload(uploads_dir: Path, upload) -> Path:
    """Store ``upload.data`` under ``upload.sha256`` (idempotent) and drop the oldest beyond KEEP_UPLOADS."""
    uploads_dir.mkdir(parents=True, exist_ok=True)
    path = uploads_dir / f"{upload.sha256}{SUFFIX}"
    if not path.exists():
        tmp = path.with_suffix(f".tmp{time.monotonic_ns()}")
        tmp.write_bytes(upload.data)
        tmp.replace(path)
        _prune(uploads_dir)
    else:
        path.touch()
    return path


def kept_upload(uploads_dir: Path, sha256: str) -> Path | None:
    """The stored image for a sha256 (validated: hex only), or None."""
    if not sha256 or len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        return None
    path = uploads_dir / f"{sha256}{SUFFIX}"
    return path if path.is_file() else None


def _prune(uploads_dir: Path) -> None:
    files = sorted(uploads_dir.glob(f"*{SUFFIX}"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in files[KEEP_UPLOADS:]:
        old.unlink(missing_ok=True)
