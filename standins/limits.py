"""The stand-ins' own rate limiter: sliding windows counting the calls let through.

Deliberately not the product's arithmetic (``telegram_bot.flood`` keeps token buckets): a
stand-in checks the client's pacing from the outside, as the real service does, so a mistake
in the client's limiter is not repeated, and hidden, here.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable


class SlidingWindow:
    """At most ``limit`` calls per key in any ``seconds``. Not thread-safe: callers hold a lock."""

    def __init__(self, *, limit: int, seconds: float, max_keys: int = 10_000):
        self.limit, self.seconds, self.max_keys = limit, seconds, max_keys
        self._calls: dict[Hashable, deque[float]] = {}

    def wait(self, key: Hashable, now: float) -> float:
        """Seconds until a call for ``key`` fits in the window (0: it fits now)."""
        calls = self._calls.get(key)
        if calls is None:
            return 0.0
        while calls and calls[0] <= now - self.seconds:
            calls.popleft()
        if len(calls) < self.limit:
            return 0.0
        return calls[-self.limit] + self.seconds - now

    def record(self, key: Hashable, now: float) -> None:
        self._calls.setdefault(key, deque()).append(now)
        if len(self._calls) > self.max_keys:  # forget the keys whose calls all left the window
            self._calls = {k: calls for k, calls in self._calls.items() if calls[-1] > now - self.seconds}


def admit(checks: Iterable[tuple[SlidingWindow, Hashable]], *, now: float) -> float:
    """Count one call under every (window, key) when all have room, and answer 0; otherwise
    count nothing and answer the seconds until all will have room."""
    checks = list(checks)
    wait = max((window.wait(key, now) for window, key in checks), default=0.0)
    if wait <= 0:
        for window, key in checks:
            window.record(key, now)
        return 0.0
    return wait
