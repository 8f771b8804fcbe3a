"""dashboard: the Plotly Dash web tier of warmserve (UI, JSON API, latency history). Never imports TensorFlow.

Grouped by feature: each feature folder holds its ids, its layout piece, its
callbacks and a controller of plain functions the callbacks call (tests call
them directly), plus its own domain modules.

    app.py          create_app(settings, client): the app factory; registers every feature's callbacks
    page.py         the page: a header, then each feature's section
    settings.py     DashboardSettings, built once from CLI flags + WARMSERVE_DASH_* environment
    users.py        users and roles: the users file, password checks, `users add` (settings read it)
    __main__.py     `python -m dashboard serve | users add | monolith | jobs-worker`
    make_examples.py  regenerates assets/examples/ from scikit-image's bundled photos

    classify/       drop images or click an example: concurrent classify, result cards and tiles, the session's results
    monolith/       run the old fresh-process way on a kept image, under a cap shared by processes (or replicas); its CLI
    history/        the latency history (SQLite or PostgreSQL): statistics, charts, summary, CSV, clear
    status/         backend status from ping()/info(), kept fresh by a poller thread; the status bar
    api/            /api/v1/classify (in front of Flask), /health, /history, /openapi.json; the multipart reader
    api_panel/      "Use via API": curl and Python snippets for this server's URL
    jobs/           background jobs on Celery + Redis (--redis), the Redis monolith cap, `jobs-worker`
    metrics/        Prometheus metrics across the dashboard's processes (/metrics)
    common/         shared pieces: sanitize, formatting, figure basics, the glossary, the stage table, kept uploads
    web/            the plumbing: auth, the WSGI guard, callback-body checks, compression, the waitress server
"""
