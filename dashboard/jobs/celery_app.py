"""The Celery app that runs the dashboard's background callbacks on Redis (broker and result store alike).

Dash's ``CeleryManager`` registers one task per background callback on this
app (named after a hash of the callback's source), in the dashboard process and
in ``python -m dashboard jobs-worker`` alike, since both build the same Dash app.
Only JSON crosses the wire (no pickle: nothing on the wire is trusted), and a
worker takes one job at a time per process (a monolith run is long).
"""

from __future__ import annotations

from celery import Celery

APP_NAME = "warmserve-dashboard"
#: results and progress of finished jobs are dropped after this long (Dash reads them within seconds)
RESULT_EXPIRES_S = 3600
#: connecting to and answering from Redis, at most (seconds)
REDIS_TIMEOUT_S = 5.0


def make_celery(redis_url: str) -> Celery:
    """A Celery app whose broker and result backend are the Redis at ``redis_url``."""
    app = Celery(APP_NAME, broker=redis_url, backend=redis_url)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        result_expires=RESULT_EXPIRES_S,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,  # `python -m dashboard` configures logging (to stdout/stderr) itself
        worker_redirect_stdouts=False,
        # Redis down: a dashboard request fails within seconds instead of holding its thread (Celery's defaults
        # retry the result store 20 times, about 20 s, and publishing for longer)
        redis_socket_connect_timeout=REDIS_TIMEOUT_S,
        redis_socket_timeout=REDIS_TIMEOUT_S,
        result_backend_transport_options={"retry_policy": {"max_retries": 2, "interval_start": 0,
                                                           "interval_step": 0.5, "interval_max": 0.5}},
        broker_connection_timeout=REDIS_TIMEOUT_S,
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 0.5},
    )
    return app
