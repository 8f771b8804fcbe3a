"""What the classify callbacks do, as plain functions of (settings, client, store, inputs): tests call these directly.

Nothing here needs a browser or a Dash request context. An example is
classified only when its name is really one of assets/examples/. A drop's
classified images join the tab's session results (``session_results.py``,
at most ``settings.session_results``); a drop that classified nothing leaves
them, and the monolith's picker, as they were: only its refusals show.
"""

from __future__ import annotations

from typing import Sequence

from ..history.store import HistoryStore
from ..settings import DashboardSettings
from . import session_results
from .layout import DEFAULT_UNSURE_BELOW, drop_items, list_examples, refusals_alert, session_view, tile_card
from .service import classify_many, record_outcomes
from .uploads import Outcome, Upload, uploads_from_browser


def classify_drop(settings: DashboardSettings, client, store: HistoryStore, contents: Sequence[str] | None,
                  filenames: Sequence[str] | None) -> list[Outcome]:
    """Files dropped on the upload zone: refusals first, then every classified or failed image, in drop order."""
    uploads, refused = uploads_from_browser(contents, filenames, settings.max_files, max_bytes=settings.max_image_bytes)
    # No data-URL thumbnails: the page loads each from the kept upload (thumbnails.install_thumbnail_route).
    outcomes = classify_many(client, uploads, top_k=settings.top_k, max_bytes=settings.max_image_bytes, store=store,
                             uploads_dir=settings.uploads_dir, thumbnails=False)
    if refused:
        record_outcomes(store, refused)
    return refused + outcomes


def classify_example(settings: DashboardSettings, client, store: HistoryStore, name: str) -> list[Outcome]:
    """One of the gallery photos (only names that are really in assets/examples/)."""
    if name not in list_examples(settings.assets_dir):
        return []
    data = (settings.assets_dir / "examples" / name).read_bytes()
    return classify_many(client, [Upload(name, data, "example")], top_k=settings.top_k,
                         max_bytes=settings.max_image_bytes, store=store, uploads_dir=settings.uploads_dir,
                         thumbnails=False)


def results_view(outcomes: Sequence[Outcome], unsure_below: float = DEFAULT_UNSURE_BELOW
                 ) -> tuple[list, object, list[dict], str | None]:
    """One drop on its own: (its result items, refusals alert, monolith dropdown options, the option selected).

    One classified image gives its full card, several give compact tiles that open to theirs
    (``layout.drop_items``). Results whose top-1 probability is below ``unsure_below`` are marked unsure.
    """
    items = drop_items(outcomes, unsure_below)
    return items, refusals_alert(outcomes), picker_options(outcomes), first_value(picker_options(outcomes))


def after_drop(settings: DashboardSettings, stored: object, outcomes: Sequence[Outcome]) -> tuple[dict | None, object]:
    """(the session store's new value, or None to leave it as it is; the drop's refusals alert, or None)."""
    return session_results.add_outcomes(stored, outcomes, settings.session_results), refusals_alert(outcomes)


def session_results_view(settings: DashboardSettings, stored: object) -> tuple[list, list[dict], str | None]:
    """What the page shows for the session's store: (results area, monolith dropdown options, the option selected).

    The picker offers every kept result (newest first) and selects the newest.
    """
    results = session_results.read_records(stored, settings.session_results)
    newest, earlier = session_results.latest_drop(results)
    options = picker_options(newest + earlier)
    return session_view(newest, earlier, settings.session_results, settings.unsure_below), options, first_value(options)


def tile_card_view(settings: DashboardSettings, stored: object, sha256: object, key: object):
    """An opened tile's full card: the session's result for ``sha256`` (looked up in the validated store)."""
    results = session_results.read_records(stored, settings.session_results)
    outcome = next((r.outcome for r in results if r.outcome.sha256 == sha256), None)
    return tile_card(outcome, settings.unsure_below, key)


def picker_options(outcomes: Sequence[Outcome]) -> list[dict]:
    """The monolith dropdown's options: each classified image once (by sha256), in the order given."""
    options: dict[str, dict] = {}
    for o in outcomes:
        if o.ok and o.sha256 and o.sha256 not in options:
            options[o.sha256] = {"label": o.name, "value": o.sha256}
    return list(options.values())


def first_value(options: Sequence[dict]) -> str | None:
    return options[0]["value"] if options else None
