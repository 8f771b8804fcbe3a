"""API: the JSON API on the dashboard's Flask server, /api/v1/classify, /api/v1/health and /api/v1/history.

    routes.py      the blueprint, its size limits and JSON errors for every /api/ path
    fast_route.py  POST /api/v1/classify answered at the WSGI layer (inside the guard), without Flask's machinery
    multipart.py   the one file field read from a multipart body with bytes.find; odd bodies go to werkzeug

It classifies through the classify feature's service, answers health from the
status feature's poller and reads the history feature's store.
"""
