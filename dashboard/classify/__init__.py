"""Classify: drop images (or click an example), see each one's top-k bars, round trip and stage timings.

One image shows its full card; a drop of several shows a grid of tiles that open to theirs. The tab keeps its
results (the newest ``session_results``) through reloads, and a drop that fails removes none of them.

    ids.py         the feature's component ids
    layout.py      the Classify card, the example gallery, result cards, compact tiles and the refusals alert
    figures.py     the top-k bar chart
    callbacks.py   the Dash callbacks: a drop or an example click; the session's results; a tile opened
    session_results.py  the results a browser tab keeps through reloads (small records, bounded, validated)
    controller.py  what that callback does, as plain functions tests call directly
    uploads.py     the domain types: Upload (an image in) and Outcome (what happened to it)
    service.py     classify uploads concurrently through BackendClient, keep and record each one
    thumbnails.py  the small preview on each result card (one bounded Pillow decode), served from the kept uploads
"""
