"""dashboard: the Plotly Dash web tier of warmserve (UI, JSON API, latency history). Never imports TensorFlow.

Grouped by feature: each feature folder holds its ids, its layout piece, its
callbacks and a controller of plain functions the callbacks call (tests call
them directly), plus its own domain modules.

    app.py          create_app(settings, client): the app factory; registers every feature's callbacks
    page.py         the page: a header, then each feature's section
    settings.py     DashboardSettings, built once from CLI flags + WARMSERVE_DASH_* environment
    users.py        users and roles: the users file, password checks, `users add` (settings read it)
    __main__.py     `python -m dashboard serve | users add | monolith`
    make_examples.py  regenerates assets/examples/ from scikit-image's bundled photos

    classify/       drop images or click an example: concurrent classify, result cards, thumbnails
    monolith/       run the old fresh-process way on a kept image, under a cross-process cap; its CLI
    history/        the SQLite latency history (service and monolith rows), chart, summary, CSV, clear
    status/         backend status from ping()/info(), kept fresh by a poller thread; the status bar
    api/            /api/v1/classify, /api/v1/health, /api/v1/history
    common/         shared pieces: sanitize, formatting, figure basics, the stage table, kept uploads
    web/            the plumbing: auth, the WSGI guard, callback-body checks, the waitress server
"""
