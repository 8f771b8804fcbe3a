"""What the classify callback does, as plain functions of (settings, client, store, inputs): tests call these directly.

Nothing here needs a browser or a Dash request context. An example is
classified only when its name is really one of assets/examples/.
"""

from __future__ import annotations

from typing import Sequence

from ..history.store import HistoryStore
from ..settings import DashboardSettings
from .layout import DEFAULT_UNSURE_BELOW, list_examples, refusals_alert, result_card
from .service import classify_many, record_outcomes
from .uploads import Outcome, Upload, uploads_from_browser


def classify_drop(settings: DashboardSettings, client, store: HistoryStore, contents: Sequence[str] | None,
                  filenames: Sequence[str] | None) -> list[Outcome]:
    """Files dropped on the upload zone: refusals first, then every classified or failed image, in drop order."""
    uploads, refused = uploads_from_browser(contents, filenames, settings.max_files)
    outcomes = classify_many(client, uploads, top_k=settings.top_k, max_bytes=settings.max_image_bytes, store=store,
                             uploads_dir=settings.uploads_dir)
    if refused:
        record_outcomes(store, refused)
    return refused + outcomes


def classify_example(settings: DashboardSettings, client, store: HistoryStore, name: str) -> list[Outcome]:
    """One of the gallery photos (only names that are really in assets/examples/)."""
    if name not in list_examples(settings.assets_dir):
        return []
    data = (settings.assets_dir / "examples" / name).read_bytes()
    return classify_many(client, [Upload(name, data, "example")], top_k=settings.top_k,
                         max_bytes=settings.max_image_bytes, store=store, uploads_dir=settings.uploads_dir)


def results_view(outcomes: Sequence[Outcome], unsure_below: float = DEFAULT_UNSURE_BELOW
                 ) -> tuple[list, object, list[dict], str | None]:
    """(result cards, refusals alert, monolith dropdown options, the option selected).

    Results whose top-1 probability is below ``unsure_below`` (the dashboard's setting) are marked unsure.
    """
    cards = [result_card(o, unsure_below, key=position) for position, o in enumerate(outcomes) if o.ok]
    options = [{"label": o.name, "value": o.sha256} for o in outcomes if o.ok]
    unique = list({opt["value"]: opt for opt in options}.values())
    return cards, refusals_alert(outcomes), unique, (unique[0]["value"] if unique else None)
