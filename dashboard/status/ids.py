"""Component ids of the status feature."""

STATUS = "status"
STATUS_INTERVAL = "status-interval"  # dcc.Interval: the status bar's refresh, and the history's poll
BACKEND_STORE = "backend-store"  # dcc.Store: the last status (display only: the monolith takes nothing from it)
