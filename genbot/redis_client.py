"""The one way the product talks to Redis: a client factory and the errors to survive.

Every user (the job queue, the bot's rate and flood limiters, the counters, the health probe)
builds its client here and catches ``REDIS_ERRORS``, so a fix to either reaches all of them.
"""
from __future__ import annotations

import redis
from django.conf import settings

# AttributeError: redis-py's handshake on a connection that timed out under it raises
# "'NoneType' object has no attribute 'readline'" (seen under load in CI). Callers that must go
# on without Redis (fall back, skip a count) treat it like any RedisError.
REDIS_ERRORS: tuple[type[BaseException], ...] = (redis.RedisError, AttributeError)


def _timeouts(role: str) -> tuple[float, float]:
    """(connect, read) time-outs in seconds for what the client is used for."""
    if role == "fast":  # on a customer's request path: a dead Redis must cost next to nothing
        return 0.3, 0.5
    if role == "queue":  # enqueueing and queue look-ups: connect fast, let a command finish
        timeout = settings.JOB_REDIS_TIMEOUT
        return timeout, max(timeout, 5.0)
    if role == "probe":  # the readiness probe: a second, then "down"
        return 1.0, 1.0
    raise ValueError(f"unknown Redis client role {role!r}")


def get_client(url: str | None = None, *, role: str = "fast") -> redis.Redis:
    """A new client for ``url`` (default ``settings.REDIS_URL``) with the time-outs of ``role``.

    Callers keep the client they get (a client holds a connection pool).
    """
    connect_timeout, read_timeout = _timeouts(role)
    return redis.Redis.from_url(
        url or settings.REDIS_URL, socket_connect_timeout=connect_timeout, socket_timeout=read_timeout
    )
