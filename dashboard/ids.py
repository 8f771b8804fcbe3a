"""Component ids, in one place: the layout, the callbacks and the browser tests all import these."""

# Classify
UPLOAD = "upload"
EXAMPLE = "example"  # pattern-matching type: {"type": EXAMPLE, "name": "chelsea.jpg"}
RESULTS = "results"
REFUSALS = "refusals"
CLASSIFY_DONE = "classify-done"  # dcc.Store: bumped after each classify, refreshes the history

# Monolith comparison
MONOLITH_IMAGE = "monolith-image"  # dropdown: which of the last results to run the monolith on
MONOLITH_BUTTON = "monolith-button"
MONOLITH_SPINNER = "monolith-spinner"
MONOLITH_PROGRESS = "monolith-progress"
MONOLITH_RESULT = "monolith-result"
MONOLITH_DONE = "monolith-done"

# Status
STATUS = "status"
STATUS_INTERVAL = "status-interval"
BACKEND_STORE = "backend-store"  # dcc.Store: the last info() reply (display only: the monolith takes nothing from it)

# History
HISTORY_GRAPH = "history-graph"
HISTORY_SUMMARY = "history-summary"
HISTORY_TABLE = "history-table"
HISTORY_SIGNATURE = "history-signature"
DOWNLOAD_BUTTON = "download-button"
DOWNLOAD = "download"
CLEAR_BUTTON = "clear-button"
CLEAR_MODAL = "clear-modal"
CLEAR_CONFIRM = "clear-confirm"
CLEAR_CANCEL = "clear-cancel"
CLEAR_DONE = "clear-done"
