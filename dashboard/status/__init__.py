"""Status: is the backend reachable, warm, and how is it set up; shown in the status bar and by /api/v1/health.

    ids.py        the feature's component ids (its timer also drives the history's refresh)
    layout.py     the status card and the status bar drawn into it
    callbacks.py  the status bar callback
    controller.py status_view(poller): the bar from the poller's latest state, never a backend call
    check.py      backend_status(client): one plain dict from ping() and info()
    poller.py     StatusPoller: one daemon thread per process keeps the latest status in memory
"""
