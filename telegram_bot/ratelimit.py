"""Per-customer rate limits: sliding windows in Redis, and local ones while Redis is down.

``hit(key, limit=...)`` records an update that is within the limit; a refused one is not
recorded, so the window frees its next slot exactly when its oldest hit leaves it, and the
verdict says how long that is (``retry_after``). A refusal period runs from a refusal to that
moment: ``first_refusal`` is true once per period (the refusal the bot answers with a text that
names the time; later refusals of the same period are covered by it). ``once(key)`` is true at
most once per window (one answer to a group chat). Redis is shared by every bot process; the
local fallback keeps the bot working (per process) when Redis does not answer, and Redis is
asked again after a short pause.
"""
from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass

import redis
from django.conf import settings

from genbot.redis_client import REDIS_ERRORS, get_client

logger = logging.getLogger(__name__)

RETRY_REDIS_AFTER = 10.0  # seconds

# Atomic so that two bot processes cannot both take the last slot. Time is Redis's own, so bot
# machines with skewed clocks share one window. Returns {allowed, seconds until a slot frees}.
_HIT_SCRIPT = """
redis.replicate_commands()  -- writes after TIME on Redis < 5 (the default since)
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
    redis.call('ZADD', KEYS[1], now, string.format('%.6f', now) .. ':' .. ARGV[3])
    redis.call('EXPIRE', KEYS[1], math.ceil(window) + 1)
    return {1, '0'}
end
local oldest = tonumber(redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2])
return {0, tostring(oldest + window - now)}
"""


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    first_refusal: bool = False
    retry_after: float = 0.0  # seconds until the window frees a slot (refusals only)

    @property
    def retry_seconds(self) -> int:
        """``retry_after`` rounded up to whole seconds (at least 1), as customers are told."""
        return max(1, math.ceil(self.retry_after))


class SlidingWindowLimiter:
    def __init__(self, *, limit: int | None = None, window: float | None = None, redis_url: str | None = None):
        self.limit = limit or settings.BOT_RATE_LIMIT
        self.window = float(window or settings.BOT_RATE_WINDOW)
        self.redis_url = redis_url or settings.REDIS_URL
        self._redis: redis.Redis | None = None
        self._script = None
        self._redis_down_until = 0.0
        self._lock = threading.Lock()
        self._local: dict[str, deque] = defaultdict(deque)
        self._local_once: dict[str, float] = {}

    def _client(self) -> redis.Redis:
        if self._redis is None:
            self._redis = get_client(self.redis_url, role="fast")
        return self._redis

    def _use_redis(self, call, fallback):
        if time.monotonic() >= self._redis_down_until:
            try:
                return call()
            except REDIS_ERRORS as exc:
                # A broken limiter must never drop the customer's update: the local window takes over.
                logger.warning("Redis rate limit unavailable (%r): using the local limiter", exc)
                self._redis_down_until = time.monotonic() + RETRY_REDIS_AFTER
        return fallback()

    def hit(self, key: str, *, limit: int | None = None) -> Verdict:
        limit = limit or self.limit
        allowed, retry_after = self._use_redis(lambda: self._hit_redis(key, limit), lambda: self._hit_local(key, limit))
        if allowed:
            return Verdict(True)
        # The refusal period ends when the slot frees: the next refusal after that is answered again.
        first = self.once(f"{key}:warned", seconds=retry_after)
        return Verdict(False, first, retry_after)

    def once(self, key: str, *, seconds: float | None = None) -> bool:
        """True for the first call in ``seconds`` (the window by default), False until they pass."""
        seconds = self.window if seconds is None else seconds
        return self._use_redis(lambda: self._once_redis(key, seconds), lambda: self._once_local(key, seconds))

    def _hit_redis(self, key: str, limit: int) -> tuple[bool, float]:
        if self._script is None:
            self._script = self._client().register_script(_HIT_SCRIPT)
        allowed, retry_after = self._script(keys=[f"genbot:rl:{key}"], args=[self.window, limit, uuid.uuid4().hex[:8]])
        return bool(allowed), float(retry_after)

    def _once_redis(self, key: str, seconds: float) -> bool:
        return bool(self._client().set(f"genbot:rl:{key}", 1, nx=True, px=max(1, math.ceil(seconds * 1000))))

    def _hit_local(self, key: str, limit: int) -> tuple[bool, float]:
        now = time.monotonic()
        with self._lock:
            hits = self._local[key]
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) < limit:
                hits.append(now)
                return True, 0.0
            return False, hits[0] + self.window - now

    def _once_local(self, key: str, seconds: float) -> bool:
        now = time.monotonic()
        with self._lock:
            if self._local_once.get(key, 0.0) > now:
                return False
            if len(self._local_once) > 50_000:
                self._local_once = {k: until for k, until in self._local_once.items() if until > now}
            self._local_once[key] = now + seconds
            return True

    def reset(self, key: str) -> None:
        with self._lock:
            self._local.pop(key, None)
            self._local_once.pop(f"{key}:warned", None)
        try:
            self._client().delete(f"genbot:rl:{key}", f"genbot:rl:{key}:warned")
        except REDIS_ERRORS:
            pass


_shared: SlidingWindowLimiter | None = None
_shared_lock = threading.Lock()


def shared_limiter() -> SlidingWindowLimiter:
    """The process's limiter (the middleware's flood window and the handlers' request window)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = SlidingWindowLimiter()
        return _shared
