"""``--redis`` / ``WARMSERVE_DASH_REDIS``: where it comes from, what it accepts, and what it switches (job manager, cap).

Nothing here connects to Redis; the runs with a real redis-server are in
tests/process/test_jobs_celery.py and tests/process/test_monolith_cap_redis.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from dash import CeleryManager, DiskcacheManager

from dashboard.jobs.manager import background_manager
from dashboard.jobs.redis_slots import RedisMonolithQueue
from dashboard.jobs.worker import worker_argv
from dashboard.monolith.queue import MonolithQueue, monolith_slots
from dashboard.settings import DashboardSettings, SettingsError, settings_from


def test_the_redis_url_comes_from_the_flag_over_the_environment_and_is_never_shown(tmp_path):
    from_env = settings_from({"data_dir": tmp_path}, {"WARMSERVE_DASH_REDIS": "redis://:secret@jobs:6379/1"})
    assert from_env.redis == "redis://:secret@jobs:6379/1"
    assert "secret" not in repr(from_env)  # a URL may carry a password
    assert settings_from({"data_dir": tmp_path, "redis": "redis://other:6379/0"},
                         {"WARMSERVE_DASH_REDIS": "redis://jobs:6379/1"}).redis == "redis://other:6379/0"
    assert settings_from({"data_dir": tmp_path}, {"WARMSERVE_DASH_REDIS": ""}).redis is None
    assert settings_from({"data_dir": tmp_path}, {}).redis is None


@pytest.mark.parametrize("bad", ["http://:secret@jobs:6379", "jobs:6379", "redis://jobs:6379/0\nX", "redis://a b"])
def test_a_bad_redis_url_is_refused_without_echoing_a_password(bad):
    with pytest.raises(SettingsError, match="Expected redis to be a Redis URL such as redis://redis:6379/0") as refused:
        DashboardSettings(redis=bad)
    assert "secret" not in str(refused.value)


def test_without_redis_everything_stays_on_this_host_as_before(tmp_path):
    settings = DashboardSettings(data_dir=tmp_path, monolith_concurrency=2, monolith_queue=3)
    assert isinstance(background_manager(settings), DiskcacheManager) and settings.cache_dir.is_dir()
    cap = monolith_slots(settings)
    assert isinstance(cap, MonolithQueue) and cap.folder == Path(tmp_path) / "monolith-queue"
    assert (cap.slots, cap.max_waiting) == (2, 3)


def test_with_redis_jobs_go_to_celery_and_the_cap_to_redis(tmp_path):
    settings = DashboardSettings(data_dir=tmp_path, redis="redis://jobs:6379/0", monolith_concurrency=2,
                                 monolith_queue=3)
    manager = background_manager(settings)
    assert isinstance(manager, CeleryManager)
    assert manager.handle.conf.accept_content == ["json"] and manager.handle.conf.task_serializer == "json"
    cap = monolith_slots(settings)
    assert isinstance(cap, RedisMonolithQueue) and (cap.slots, cap.max_waiting) == (2, 3)


def test_the_worker_runs_as_many_jobs_as_the_cap_and_its_line_unless_told():
    settings = DashboardSettings(redis="redis://jobs:6379/0", monolith_concurrency=2, monolith_queue=3)
    assert "--concurrency=6" in worker_argv(settings, None, "INFO")  # cap 2 + line 3 + one free to refuse
    assert "--concurrency=1" in worker_argv(settings, 1, "INFO")
    with pytest.raises(SettingsError, match="concurrency"):
        worker_argv(settings, 0, "INFO")
