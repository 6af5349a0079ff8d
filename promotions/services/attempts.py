"""Brute force on promo codes: the attempts a customer has left, counted in Redis.

Every attempt takes a slot before the code is looked at (one atomic script), so concurrent
tries cannot slip past the limit; a right code gives its slot back (``release``): only wrong
ones count. The window (PROMO_CODE_ATTEMPT_WINDOW) starts at the first attempt.

Redis not answering: promo codes are refused (``PromoCodesUnavailable``), not checked without a
limit. A code is money: a local per-process fallback would let every bot process (and every
restart) grant a fresh set of guesses, while refusing costs a customer a retry a few minutes
later. (The bot's message limiter, ``telegram_bot.ratelimit``, falls back locally because a
dropped message is worse than a few extra ones; here it is the other way round.)
"""
from __future__ import annotations

import functools
import logging
import math

from django.conf import settings

from genbot.redis_client import REDIS_ERRORS, get_client

from ..exceptions import PromoCodeAttemptsExceeded, PromoCodesUnavailable

logger = logging.getLogger("promotions")

# KEYS: the counter. ARGV: limit, window s. Answers {taken (1|0), seconds left in the window}.
_TAKE = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
if n > tonumber(ARGV[1]) then
  redis.call('DECR', KEYS[1])
  return {0, redis.call('TTL', KEYS[1])}
end
return {1, 0}
"""
_RELEASE = """
if redis.call('EXISTS', KEYS[1]) == 1 and tonumber(redis.call('GET', KEYS[1])) > 0 then
  return redis.call('DECR', KEYS[1])
end
return 0
"""

@functools.cache
def _redis():
    return get_client(role="fast")


def reset_client() -> None:
    """Forget the client (tests point REDIS_URL elsewhere)."""
    _redis.cache_clear()


def _key(customer_id: int) -> str:
    return f"genbot:promo-attempts:{customer_id}"


def take(customer_id: int) -> None:
    """Take an attempt, or raise ``PromoCodeAttemptsExceeded(minutes=...)`` (or unavailable)."""
    try:
        taken, seconds_left = _redis().eval(
            _TAKE, 1, _key(customer_id), settings.PROMO_CODE_ATTEMPTS, settings.PROMO_CODE_ATTEMPT_WINDOW
        )
    except REDIS_ERRORS as exc:
        logger.warning("promo code attempts cannot be counted (%r): refused", exc)
        raise PromoCodesUnavailable() from exc
    if not taken:
        seconds = int(seconds_left) if int(seconds_left) > 0 else settings.PROMO_CODE_ATTEMPT_WINDOW
        raise PromoCodeAttemptsExceeded(minutes=max(1, math.ceil(seconds / 60)))


def release(customer_id: int) -> None:
    """Give back the attempt of a code that was right (or refused for another reason than being wrong)."""
    try:
        _redis().eval(_RELEASE, 1, _key(customer_id))
    except REDIS_ERRORS as exc:  # the attempt stays counted: safe side
        logger.warning("promo code attempt not given back (%r)", exc)
