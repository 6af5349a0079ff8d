"""Token buckets: the sender's flood-limit arithmetic.

Telegram allows about one message a second per chat (short bursts pass) and 30 a second in
all. The sender *reserves* a slot and sleeps until it (so concurrent senders queue up fairly).
The local sandbox checks it with limits of its own (``standins.limits``), as Telegram would.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict


class TokenBucket:
    """Buckets by key: ``rate`` tokens a second, at most ``capacity`` stored.

    ``reserve(key)`` always takes a token, possibly going into debt, and returns how long the
    caller must wait before using it; ``try_take(key)`` takes one only if available and
    otherwise returns the seconds until one will be.
    """

    def __init__(self, *, rate: float, capacity: float, max_keys: int = 100_000):
        self.rate = float(rate)
        self.capacity = float(capacity)
        self.max_keys = max_keys
        self._lock = threading.Lock()
        self._state: OrderedDict[object, tuple[float, float]] = OrderedDict()

    def _tokens(self, key, now: float) -> float:
        tokens, stamp = self._state.get(key, (self.capacity, now))
        return min(self.capacity, tokens + (now - stamp) * self.rate)

    def _store(self, key, tokens: float, now: float) -> None:
        self._state[key] = (tokens, now)
        self._state.move_to_end(key)
        while len(self._state) > self.max_keys:
            self._state.popitem(last=False)

    def reserve(self, key=None, *, now: float | None = None) -> float:
        with self._lock:
            now = time.monotonic() if now is None else now
            tokens = self._tokens(key, now) - 1
            self._store(key, tokens, now)
            return 0.0 if tokens >= 0 else -tokens / self.rate

    def try_take(self, key=None, *, now: float | None = None) -> float:
        with self._lock:
            now = time.monotonic() if now is None else now
            tokens = self._tokens(key, now)
            if tokens >= 1:
                self._store(key, tokens - 1, now)
                return 0.0
            return (1 - tokens) / self.rate

    def block(self, key, seconds: float) -> None:
        """Empty the bucket so that the next token comes ``seconds`` from now (a 429's retry_after)."""
        with self._lock:
            now = time.monotonic()
            self._store(key, min(self._tokens(key, now), 1 - seconds * self.rate), now)


# GCRA in Redis: the key holds the "theoretical arrival time" of the next free slot, in Redis's
# own clock (so machines with skewed clocks agree). Reserving always takes the next slot and
# answers how long to wait for it; ``block`` pushes the next slot ``seconds`` away (a 429).
_GCRA_RESERVE = """
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local block = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = 0
if block > 0 then
  local blocked = now + block + (burst - 1) * interval
  if blocked > tat then tat = blocked end
else
  wait = tat - now - (burst - 1) * interval
  if wait < 0 then wait = 0 end
  tat = tat + interval
end
redis.call('SET', KEYS[1], string.format('%.6f', tat), 'PX', math.ceil((tat - now + 60) * 1000))
return string.format('%.6f', wait)
"""


class SharedTokenBucket:
    """A ``TokenBucket`` shared by every process through Redis; a local one while Redis is down.

    The bot, the workers' deliveries and a broadcast command then keep within one set of
    Telegram limits together, not each on its own.
    """

    RETRY_REDIS_AFTER = 10.0

    def __init__(self, *, name: str, rate: float, capacity: float, redis_url: str):
        from genbot.redis_client import REDIS_ERRORS, get_client

        self.name = name
        self.interval = 1.0 / rate
        self.capacity = capacity
        self.local = TokenBucket(rate=rate, capacity=capacity)
        self._redis = get_client(redis_url, role="fast")
        self._script = self._redis.register_script(_GCRA_RESERVE)
        self._errors = REDIS_ERRORS
        self._down_until = 0.0

    def _call(self, key, block: float) -> float | None:
        if time.monotonic() < self._down_until:
            return None
        try:
            answer = self._script(keys=[f"genbot:flood:{self.name}:{key}"], args=[self.interval, self.capacity, block])
            return float(answer)
        except self._errors:
            self._down_until = time.monotonic() + self.RETRY_REDIS_AFTER
            return None

    def reserve(self, key=None) -> float:
        wait = self._call(key, 0)
        return self.local.reserve(key) if wait is None else wait

    def block(self, key, seconds: float) -> None:
        self.local.block(key, seconds)
        self._call(key, seconds)
