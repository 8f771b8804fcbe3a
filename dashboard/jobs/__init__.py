"""Background jobs beyond one host: Celery on Redis for Dash's background callbacks, and the monolith cap in Redis.

Used only when the dashboard is given ``--redis URL`` (``WARMSERVE_DASH_REDIS``):

    celery_app.py   the Celery app on that Redis (JSON only, never pickle)
    manager.py      which Dash background-callback manager the app gets (Celery, else diskcache as before)
    worker.py       ``python -m dashboard jobs-worker``: the Celery worker that runs those jobs (and serves
                    their metrics with ``--metrics-port``)
    shutdown.py     its bounded SIGTERM: running monolith runs get a grace period, then are stopped with a message
    redis_slots.py  the monolith cap (N running, M waiting) shared by every replica, with expiring leases

Without Redis only shutdown.py's check is imported (a no-op outside a jobs worker) and the dashboard is one
host's, as before.
"""
