"""Counters shared by every process (bot, workers, web) through Redis, for /metrics.

A process-local Prometheus counter in the bot would never reach the web process that serves
/metrics, so events that happen outside the web process are counted in one Redis hash. Counting
is best-effort: when Redis does not answer, the event is not counted and nothing else happens.
"""
from __future__ import annotations

import logging

import redis

from .redis_client import REDIS_ERRORS, get_client

log = logging.getLogger(__name__)
HASH = "genbot:counters"
_client: redis.Redis | None = None


def _redis() -> redis.Redis:
    global _client
    if _client is None:
        _client = get_client(role="fast")
    return _client


def count(name: str, amount: int = 1) -> None:
    try:
        _redis().hincrby(HASH, name, amount)
    except REDIS_ERRORS as exc:
        log.debug("counter %s not counted: %r", name, exc)


def read_all() -> dict[str, int]:
    try:
        return {k.decode(): int(v) for k, v in _redis().hgetall(HASH).items()}
    except REDIS_ERRORS:
        return {}
