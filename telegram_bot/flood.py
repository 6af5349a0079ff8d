"""Token buckets: the one flood-limit arithmetic, shared by the sender and the sandbox.

Telegram allows about one message a second per chat (short bursts pass) and 30 a second in
all. The sender *reserves* a slot and sleeps until it (so concurrent senders queue up fairly);
the sandbox *checks* and answers 429 when a bucket is empty.
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
