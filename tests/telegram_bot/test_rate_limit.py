"""The per-customer rate limit: a Redis sliding window shared by every bot process, and a local
window that keeps the bot working when Redis does not answer."""
from __future__ import annotations

import time
import uuid

import pytest

from telegram_bot.ratelimit import SlidingWindowLimiter


def test_the_redis_window_allows_the_limit_then_refuses_and_warns_once(settings):
    limiter = SlidingWindowLimiter(limit=3, window=60, redis_url=settings.REDIS_URL)
    key = f"test:{uuid.uuid4().hex}"
    verdicts = [limiter.hit(key) for _ in range(6)]
    assert [v.allowed for v in verdicts] == [True, True, True, False, False, False]
    assert [v.first_refusal for v in verdicts[3:]] == [True, False, False]
    assert all(59 <= v.retry_after <= 60 and v.retry_seconds == 60 for v in verdicts[3:])
    limiter.reset(key)


@pytest.mark.parametrize("redis_url", ["settings", "redis://127.0.0.1:1/0"], ids=["redis", "local"])
def test_the_retry_time_is_when_the_oldest_hit_leaves_and_refusals_are_not_counted(settings, redis_url):
    limiter = SlidingWindowLimiter(limit=2, window=2, redis_url=settings.REDIS_URL if redis_url == "settings" else redis_url)
    key = f"test:{uuid.uuid4().hex}"
    assert limiter.hit(key).allowed
    time.sleep(0.6)
    assert limiter.hit(key).allowed
    refused = [limiter.hit(key) for _ in range(5)]
    assert not any(v.allowed for v in refused) and [v.first_refusal for v in refused] == [True] + [False] * 4
    assert 1.2 <= refused[0].retry_after <= 1.45 and refused[0].retry_seconds == 2
    time.sleep(refused[-1].retry_after + 0.05)
    # The refused hits took no slot: the oldest one left, so one more is let through...
    assert limiter.hit(key).allowed
    # ...and the next refusal starts a new period, answered again.
    again = limiter.hit(key)
    assert not again.allowed and again.first_refusal
    limiter.reset(key)


@pytest.mark.parametrize("redis_url", ["settings", "redis://127.0.0.1:1/0"], ids=["redis", "local"])
def test_once_is_true_once_per_window(settings, redis_url):
    limiter = SlidingWindowLimiter(limit=2, window=1, redis_url=settings.REDIS_URL if redis_url == "settings" else redis_url)
    key = f"test:{uuid.uuid4().hex}"
    assert [limiter.once(key) for _ in range(3)] == [True, False, False]
    time.sleep(1.1)
    assert limiter.once(key)


def test_two_limiters_on_one_redis_share_the_window(settings):
    key = f"test:{uuid.uuid4().hex}"
    first = SlidingWindowLimiter(limit=4, window=60, redis_url=settings.REDIS_URL)
    second = SlidingWindowLimiter(limit=4, window=60, redis_url=settings.REDIS_URL)
    results = [(first if i % 2 else second).hit(key).allowed for i in range(6)]
    assert results.count(True) == 4
    first.reset(key)


def test_the_window_slides(settings):
    limiter = SlidingWindowLimiter(limit=2, window=1, redis_url=settings.REDIS_URL)
    key = f"test:{uuid.uuid4().hex}"
    assert limiter.hit(key).allowed and limiter.hit(key).allowed
    assert not limiter.hit(key).allowed
    time.sleep(1.1)
    assert limiter.hit(key).allowed


def test_without_redis_the_local_window_still_limits():
    limiter = SlidingWindowLimiter(limit=3, window=60, redis_url="redis://127.0.0.1:1/0")
    started = time.monotonic()
    verdicts = [limiter.hit("someone") for _ in range(5)]
    assert [v.allowed for v in verdicts] == [True, True, True, False, False]
    assert [v.first_refusal for v in verdicts[3:]] == [True, False]
    assert time.monotonic() - started < 2  # Redis is asked once, not on every update


def test_a_redis_client_failing_mid_handshake_falls_back_to_the_local_window(settings, monkeypatch):
    """redis-py can raise AttributeError from a connection that timed out during its handshake
    (seen under load in CI); the update must still be limited, never dropped with a traceback."""
    limiter = SlidingWindowLimiter(limit=2, window=60, redis_url=settings.REDIS_URL)

    def broken_call(*args, **kwargs):
        raise AttributeError("'NoneType' object has no attribute 'readline'")

    monkeypatch.setattr(limiter._client(), "evalsha", broken_call)
    monkeypatch.setattr(limiter._client(), "set", broken_call)
    verdicts = [limiter.hit("someone") for _ in range(3)]
    assert [v.allowed for v in verdicts] == [True, True, False]
    assert verdicts[-1].first_refusal and limiter._redis_down_until > time.monotonic()


def test_concurrent_hits_from_several_processes_never_pass_more_than_the_limit(settings):
    """Each thread has its own limiter (as each bot process does) on the one Redis window."""
    from tests.helpers import run_concurrently

    key = f"test:{uuid.uuid4().hex}"
    limiters = [SlidingWindowLimiter(limit=5, window=60, redis_url=settings.REDIS_URL) for _ in range(20)]
    results = run_concurrently(lambda i: limiters[i].hit(key).allowed, 20)
    assert sorted(results) == [("ok", False)] * 15 + [("ok", True)] * 5
    limiters[0].reset(key)


def test_the_shared_flood_bucket_survives_a_redis_client_failing_mid_handshake(settings, monkeypatch):
    """The same redis-py AttributeError must not abort a broadcast mid-way: the local bucket
    takes over, as the rate limiter's local window does."""
    from telegram_bot.flood import SharedTokenBucket

    bucket = SharedTokenBucket(name=f"test-{uuid.uuid4().hex}", rate=1, capacity=1, redis_url=settings.REDIS_URL)

    def broken_call(*args, **kwargs):
        raise AttributeError("'NoneType' object has no attribute 'readline'")

    monkeypatch.setattr(bucket, "_script", broken_call)
    waits = [bucket.reserve("chat") for _ in range(2)]
    assert waits[0] == 0 and waits[1] > 0  # the local bucket: one token, then a wait
    assert bucket._down_until > time.monotonic()
