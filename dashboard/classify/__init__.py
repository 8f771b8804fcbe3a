"""Classify: drop images (or click an example), see each one's top-k bars, round trip and stage timings.

    ids.py         the feature's component ids
    layout.py      the Classify card, the example gallery, result cards and the refusals alert
    figures.py     the top-k bar chart
    callbacks.py   the one Dash callback (a drop or an example click)
    controller.py  what that callback does, as plain functions tests call directly
    uploads.py     the domain types: Upload (an image in) and Outcome (what happened to it)
    service.py     classify uploads concurrently through BackendClient, keep and record each one
    thumbnails.py  the small preview on each result card (one bounded Pillow decode)
"""
