"""Component ids of the classify feature (its layout, its callback, other features' callbacks and the browser tests)."""

UPLOAD = "upload"
UPLOAD_BUTTON = "upload-button"  # what looks like a "Choose images…" button inside the drop zone (a click on it opens the dialog)
EXAMPLE = "example"  # pattern-matching type: {"type": EXAMPLE, "name": "chelsea.jpg"}
RESULTS = "results"
REFUSALS = "refusals"
CLASSIFY_DONE = "classify-done"  # dcc.Store: bumped after each classify, refreshes the history
SESSION_RESULTS = "session-results"  # dcc.Store (sessionStorage): this tab's kept results, small records (session_results.py)
TILE = "result-tile"  # pattern-matching: {"type": TILE, "sha256": ..., "key": ...}: a tile's summary (a click opens it)
TILE_CARD = "result-tile-card"  # pattern-matching, same keys: the opened tile's full card, drawn on first open
