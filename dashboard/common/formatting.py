"""How the dashboard writes numbers for people: milliseconds, byte counts, UTC timestamps and durations."""

from __future__ import annotations

from datetime import datetime, timezone


def format_ms(ms: float | None) -> str:
    """Human milliseconds: '0.42 ms', '23.1 ms', '812 ms', '3.48 s'."""
    if ms is None:
        return "—"
    if ms >= 1000:
        return f"{ms / 1000:.2f} s"
    if ms >= 100:
        return f"{ms:.0f} ms"
    if ms >= 10:
        return f"{ms:.1f} ms"
    return f"{ms:.2f} ms"


def format_bytes(n: int) -> str:
    """'812 bytes', '40 KB', '3.0 MB'."""
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n} bytes"


def format_time(ts: float) -> str:
    """A Unix time as ISO 8601 in UTC, to the millisecond (the history table and the CSV)."""
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="milliseconds")


def format_duration(seconds: float | None) -> str:
    """'42 s', '5 min 3 s', '2 h 10 min', '3 d 4 h'."""
    if seconds is None:
        return "—"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} d {seconds % 86400 // 3600} h"
