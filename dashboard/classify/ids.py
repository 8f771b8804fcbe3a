"""Component ids of the classify feature (its layout, its callback, other features' callbacks and the browser tests)."""

UPLOAD = "upload"
UPLOAD_BUTTON = "upload-button"  # what looks like a "Choose images…" button inside the drop zone (a click on it opens the dialog)
EXAMPLE = "example"  # pattern-matching type: {"type": EXAMPLE, "name": "chelsea.jpg"}
RESULTS = "results"
REFUSALS = "refusals"
CLASSIFY_DONE = "classify-done"  # dcc.Store: bumped after each classify, refreshes the history
