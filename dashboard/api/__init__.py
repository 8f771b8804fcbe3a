"""API: the JSON API on the dashboard's Flask server, /api/v1/classify, /api/v1/health and /api/v1/history.

    routes.py   the blueprint, its size limits and JSON errors for every /api/ path

It classifies through the classify feature's service, answers health from the
status feature's poller and reads the history feature's store.
"""
