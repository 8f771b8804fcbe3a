"""dashboard: the Plotly Dash web tier of warmserve (UI, JSON API, latency history). Never imports TensorFlow.

Layout:
    settings.py        DashboardSettings, built once from CLI flags + WARMSERVE_DASH_* environment
    app.py             create_app(settings, client): the app factory
    ids.py             component ids (layout, callbacks and browser tests share them)
    layout.py          the page; components.py the small UI factories; figures.py the Plotly figures
    callbacks.py       thin Dash callbacks over the plain helpers in views.py
    classify.py        uploads -> concurrent client.classify -> outcomes (no Dash)
    history.py         the SQLite latency history (service and monolith rows)
    monolith_runner.py runs `python -m model_backend.monolith IMAGE --json` as a subprocess
    monolith_queue.py  the cross-process cap on monolith runs (flock'd slot files) and its waiting line
    sanitize.py        stored text made safe: file names, capped strings, CSV cells, Plotly hover text
    status.py          backend status from ping()/info(); poller.py keeps it fresh in a thread
    api.py             /api/v1/classify, /api/v1/health, /api/v1/history
    auth.py            optional basic auth with roles (viewer, admin); users.py the users file and `users add`
    guard.py           WSGI middleware: Host, credentials, Origin and body size, before any body is read
    callback_body.py   a malformed Dash callback body is a 400, not a 500
    server.py          waitress set-up (connection limits, a health thread pool) and a bounded SIGTERM
    __main__.py        `python -m dashboard serve | users add`
    make_examples.py   regenerates assets/examples/ from scikit-image's bundled photos
"""
