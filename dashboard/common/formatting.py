"""How the dashboard writes numbers for people: milliseconds, byte counts, timestamps (UTC, or the viewer's
time zone) and durations."""

from __future__ import annotations

from datetime import datetime, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: longest IANA time zone name accepted from a browser ("America/Argentina/ComodRivadavia" is 32)
ZONE_NAME_MAX = 64


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


def format_ms_tick(ms: float) -> str:
    """An axis tick on a log latency axis: '0.5 ms', '2 ms', '50 ms', '200 ms', '1 s', '20 s'."""
    if ms >= 1000:
        return f"{ms / 1000:g} s"
    return f"{ms:g} ms"


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


def viewer_zone(name: object) -> tzinfo:
    """The time zone a browser reported (an IANA name such as 'Europe/Berlin'), or UTC for anything else.

    The name comes from the browser, so it is not trusted: only a known zone of the system's database is used.
    """
    if not isinstance(name, str) or not name or len(name) > ZONE_NAME_MAX or name.startswith(("/", ".")) or ".." in name:
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return timezone.utc


def zone_label(zone: tzinfo) -> str:
    """'UTC' or the zone's IANA name, for axis titles and table headers."""
    return getattr(zone, "key", None) or "UTC"


def format_local_time(ts: float, zone: tzinfo, with_date: bool = False) -> str:
    """A Unix time in ``zone``: '14:03:07', or '2026-11-30 14:03:07' with the date."""
    moment = datetime.fromtimestamp(ts, tz=zone)
    return moment.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S")
