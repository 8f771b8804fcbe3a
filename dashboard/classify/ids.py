"""Component ids of the classify feature (its layout, its callback, other features' callbacks and the browser tests)."""

UPLOAD = "upload"
EXAMPLE = "example"  # pattern-matching type: {"type": EXAMPLE, "name": "chelsea.jpg"}
RESULTS = "results"
REFUSALS = "refusals"
CLASSIFY_DONE = "classify-done"  # dcc.Store: bumped after each classify, refreshes the history
