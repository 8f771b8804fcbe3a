"""Which Dash background-callback manager the app gets: Celery on Redis when configured, else diskcache as before."""

from __future__ import annotations

import diskcache
from dash import CeleryManager, DiskcacheManager

from ..settings import DashboardSettings

#: how long a finished job's result is kept for the browser that asked (seconds)
RESULT_EXPIRE_S = 3600


def background_manager(settings: DashboardSettings) -> DiskcacheManager | CeleryManager:
    """``CeleryManager`` on ``settings.redis`` (jobs run by ``python -m dashboard jobs-worker``), else a
    ``DiskcacheManager`` under ``settings.cache_dir`` (jobs run in processes the dashboard forks itself)."""
    if settings.redis:
        from .celery_app import make_celery

        return CeleryManager(make_celery(settings.redis), expire=RESULT_EXPIRE_S)
    settings.cache_dir.mkdir(parents=True, exist_ok=True)
    return DiskcacheManager(diskcache.Cache(str(settings.cache_dir)), expire=RESULT_EXPIRE_S)
