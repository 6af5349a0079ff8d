"""Per-customer rate limit: a sliding window in Redis, and a local one while Redis is down.

``hit(key)`` records a request and says whether it is within the limit and whether this is
the first refusal of the window (the only one the bot answers, politely, before going quiet).
Redis is shared by every bot process; the local fallback keeps the bot working (per process)
when Redis does not answer, and Redis is asked again after a short pause.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

RETRY_REDIS_AFTER = 10.0  # seconds


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    first_refusal: bool = False


class SlidingWindowLimiter:
    def __init__(self, *, limit: int | None = None, window: float | None = None, redis_url: str | None = None):
        self.limit = limit or settings.BOT_RATE_LIMIT
        self.window = float(window or settings.BOT_RATE_WINDOW)
        self.redis_url = redis_url or settings.REDIS_URL
        self._redis: redis.Redis | None = None
        self._redis_down_until = 0.0
        self._lock = threading.Lock()
        self._local: dict[str, deque] = defaultdict(deque)
        self._local_warned: dict[str, float] = {}

    def _client(self) -> redis.Redis:
        if self._redis is None:
            self._redis = redis.Redis.from_url(self.redis_url, socket_connect_timeout=0.3, socket_timeout=0.5)
        return self._redis

    def hit(self, key: str, *, limit: int | None = None) -> Verdict:
        limit = limit or self.limit
        if time.monotonic() >= self._redis_down_until:
            try:
                return self._hit_redis(key, limit)
            except (redis.RedisError, AttributeError) as exc:
                # AttributeError: redis-py's handshake on a connection that timed out under it
                # ("'NoneType' object has no attribute 'readline'"). A broken limiter must never
                # drop the customer's update: the local window takes over.
                logger.warning("Redis rate limit unavailable (%r): using the local limiter", exc)
                self._redis_down_until = time.monotonic() + RETRY_REDIS_AFTER
        return self._hit_local(key, limit)

    def _hit_redis(self, key: str, limit: int) -> Verdict:
        now = time.time()
        name = f"genbot:rl:{key}"
        pipe = self._client().pipeline(transaction=True)
        pipe.zremrangebyscore(name, 0, now - self.window)
        pipe.zadd(name, {f"{now:.6f}:{uuid.uuid4().hex[:8]}": now})
        pipe.zcard(name)
        pipe.expire(name, int(self.window) + 1)
        count = pipe.execute()[2]
        if count <= limit:
            return Verdict(True)
        first = bool(self._client().set(f"{name}:warned", 1, nx=True, ex=int(self.window)))
        return Verdict(False, first)

    def _hit_local(self, key: str, limit: int) -> Verdict:
        now = time.monotonic()
        with self._lock:
            hits = self._local[key]
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            hits.append(now)
            if len(hits) <= limit:
                return Verdict(True)
            warned = self._local_warned.get(key, 0.0)
            first = now - warned >= self.window
            if first:
                self._local_warned[key] = now
            return Verdict(False, first)

    def reset(self, key: str) -> None:
        with self._lock:
            self._local.pop(key, None)
            self._local_warned.pop(key, None)
        try:
            self._client().delete(f"genbot:rl:{key}", f"genbot:rl:{key}:warned")
        except redis.RedisError:
            pass
