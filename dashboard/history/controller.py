"""What the history callbacks do, as plain functions of (settings, store, inputs): tests call these directly."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Mapping

from dash import no_update

from ..common.formatting import format_duration, viewer_zone, zone_label
from ..settings import DashboardSettings
from ..web.auth import admin_refusal
from . import ids
from .figures import BUCKETS_TARGET, RAW_MAX, STRIP_MAX, bucket_label, distribution_figure, time_figure
from .layout import history_table, summary_view
from .stats import GROUPS, MIN_GAP_S, bucket_width, idle_breaks, padded_window, view_start
from .store import ACTIVITY_BIN_S, HistoryStore

RECENT_ROWS = 12


@dataclass(frozen=True)
class HistoryView:
    """What one refresh of the history section draws."""

    time_figure: object
    distribution_figure: object
    time_note: str
    summary: object
    table: object
    signature: list


def history_view(store: HistoryStore, zone_name: object = None, status: Mapping | None = None) -> HistoryView:
    """Both charts, the note under the time view, the summary cards, the recent-requests table and the signature.

    ``zone_name`` is the viewer's IANA time zone (from the browser; UTC when unknown or not a zone), ``status``
    the status poller's snapshot (its ``runtime``, when the backend's info reports one, labels the service side).
    """
    zone = viewer_zone(zone_name)
    groups = store.group_percentiles()
    summary = store.summary(groups)
    strips = {g: store.group_values(g, STRIP_MAX) for g in GROUPS if 0 < groups[g]["count"] <= STRIP_MAX}
    figure, note = _time_view(store, zone)
    return HistoryView(figure, distribution_figure(groups, strips), note, summary_view(summary, status),
                       history_table(store.recent(RECENT_ROWS), zone), store.signature())


class SharedViews:
    """The computed history views, shared by every browser of this dashboard process.

    Browsers poll the history on the status timer. A view is keyed by :meth:`key`: the store's signature
    (row count, newest id: one indexed query), the viewer's time zone and the backend's runtime from the
    status poller (``poller.snapshot()``, optional). While that key holds, every browser gets the same view
    without touching the database again; when a request lands, the first browser to poll computes the new
    view (under a lock, so several browsers never compute the same view at once) and the others reuse it.
    """

    def __init__(self, store: HistoryStore, poller=None, keep: int = 8) -> None:
        self.store, self.poller, self.keep = store, poller, keep
        self._views: OrderedDict[tuple, HistoryView] = OrderedDict()
        self._lock = threading.Lock()

    def status(self) -> dict | None:
        snapshot = self.poller.snapshot() if self.poller is not None else None
        return snapshot if isinstance(snapshot, dict) else None

    def key(self, zone_name: object = None, status: Mapping | None = None) -> tuple:
        """(count, newest id, runtime, zone): what the drawn view depends on; its first three are what the
        page keeps to skip redraws."""
        runtime = (status or {}).get("runtime")
        count, newest = self.store.signature()
        return count, newest, runtime if isinstance(runtime, str) else None, zone_label(viewer_zone(zone_name))

    def view(self, zone_name: object = None) -> HistoryView:
        """The view for this key: computed once, then shared."""
        status = self.status()
        key = self.key(zone_name, status)
        with self._lock:
            view = self._views.get(key)
            if view is None:
                view = history_view(self.store, zone_name, status)
                view = replace(view, signature=list(key[:3]))
                self._views[key] = view
                while len(self._views) > self.keep:
                    self._views.popitem(last=False)
            else:
                self._views.move_to_end(key)
        return view

    def page_signature(self) -> list:
        """What a page compares with the signature it drew (HistoryView.signature) to skip a redraw."""
        return list(self.key(None, self.status())[:3])


def _time_view(store: HistoryStore, zone) -> tuple[object, str]:
    """The time view over the recent activity (stats.view_start), its idle gaps cut out of the axis
    (stats.idle_breaks), and the sentence that says what it shows."""
    bins, counts = store.activity()
    since = view_start(bins, MIN_GAP_S + ACTIVITY_BIN_S, counts)
    if since is None:
        return time_figure(None, None, (0.0, 1.0), zone), ""
    first, last = store.time_bounds(since)
    count = int(counts[bins >= since].sum())  # the activity bins count exactly what the view holds
    breaks = idle_breaks(bins[bins >= since], ACTIVITY_BIN_S)
    idle_s = sum(end - start for start, end in breaks)
    window = padded_window(first, last, idle_s)
    earlier = int(counts.sum()) - count
    note = [f"Showing {count:,} request{'s' if count != 1 else ''} over {format_duration(last - first)}"]
    if earlier:
        note.append(f"; {earlier:,} earlier, before an idle gap, are in the distribution only")
    if breaks:
        note.append(f"; {len(breaks)} idle gap{'s' if len(breaks) != 1 else ''} ({format_duration(idle_s)}) "
                    "cut out of the time axis")
    if count <= RAW_MAX:
        figure = time_figure(store.points(since, RAW_MAX), None, window, zone, breaks)
        note.append(". Each dot is one request; hover for its stages.")
    else:
        width = bucket_width(window[1] - window[0] - idle_s, BUCKETS_TARGET)
        buckets, sample_step = store.bucket_percentiles(since, window[0], width, count=count)
        figure = time_figure(None, buckets, window, zone, breaks)
        note.append(f". Too many to draw one by one: lines show the median (p50, solid) and p95 (dotted) per "
                    f"{bucket_label(width)}")
        note.append(f", estimated from every {sample_step}th request." if sample_step > 1 else ".")
    return figure, "".join(note)


def history_csv(store: HistoryStore) -> dict:
    """What dcc.Download needs to save the history as a CSV file."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return {"content": store.to_csv(), "filename": f"warmserve-history-{stamp}.csv", "type": "text/csv"}


def clear_history(settings: DashboardSettings, store: HistoryStore, trigger: object) -> tuple:
    """(modal open, cleared count, button text, button disabled, button title) after a click on ``trigger``.

    Admins only, checked here on the server: the confirm dialog alone is no protection.
    """
    if trigger in (ids.CLEAR_BUTTON, ids.CLEAR_CONFIRM):
        refusal = admin_refusal(settings)
        if refusal:
            return False, no_update, "Clear history: admins only", True, refusal
    if trigger == ids.CLEAR_BUTTON:
        return True, no_update, no_update, no_update, no_update
    if trigger == ids.CLEAR_CONFIRM:
        return False, store.clear(), no_update, no_update, no_update
    return False, no_update, no_update, no_update, no_update
