"""One Redis module: every product client is built by ``genbot.redis_client.get_client``."""
import pathlib
import re

import pytest

from genbot import redis_client

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_each_role_has_its_time_outs(settings):
    settings.JOB_REDIS_TIMEOUT = 0.2
    fast = redis_client.get_client("redis://127.0.0.1:6379/0", role="fast").connection_pool.connection_kwargs
    queue = redis_client.get_client("redis://127.0.0.1:6379/0", role="queue").connection_pool.connection_kwargs
    probe = redis_client.get_client("redis://127.0.0.1:6379/0", role="probe").connection_pool.connection_kwargs
    assert (fast["socket_connect_timeout"], fast["socket_timeout"]) == (0.3, 0.5)
    assert (queue["socket_connect_timeout"], queue["socket_timeout"]) == (0.2, 5.0)
    assert (probe["socket_connect_timeout"], probe["socket_timeout"]) == (1.0, 1.0)
    with pytest.raises(ValueError):
        redis_client.get_client(role="slow")


def test_the_default_url_is_the_settings(settings):
    settings.REDIS_URL = "redis://127.0.0.1:6379/7"
    assert redis_client.get_client().connection_pool.connection_kwargs["db"] == 7


def test_the_errors_to_survive_include_redis_pys_half_open_connection():
    import redis

    assert redis.RedisError in redis_client.REDIS_ERRORS and AttributeError in redis_client.REDIS_ERRORS


def test_no_product_module_builds_its_own_redis_client():
    builders = re.compile(r"redis\.(Strict)?Redis(\.from_url)?\(")
    offenders = [
        str(path.relative_to(ROOT))
        for package in ("billing", "genbot", "jobs", "payments", "telegram_bot")
        for path in (ROOT / package).rglob("*.py")
        if path.name != "redis_client.py" and builders.search(path.read_text())
    ]
    assert offenders == []
