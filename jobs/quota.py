"""Provider quotas shared by every worker on every machine: leased slots and a first-come line.

Kling limits the tasks an account runs at once (it answers 1303 beyond), Gemini the calls (429).
Each provider's quota (``provider_quota``) is a number of slots; a job holds one from the moment
a worker starts on it until its generation is over. Per provider, in Redis:

- ``genbot:quota:<p>:leases``: sorted set, job id -> when its lease ends (ms). A worker's
  heartbeat (pictures) or a task's poll (videos) renews it; the slot of a worker killed mid-job
  comes back when its lease ends (``JOB_QUOTA_LEASE``), so no slot leaks.
- ``genbot:quota:<p>:line``: sorted set, job id -> job id. The jobs waiting for a slot, first
  submitted first: a slot goes only to the first ``free`` jobs in line (FIFO per provider).
- ``genbot:quota:<p>:seen``: job id -> when the waiting job last asked (ms). A job in line that
  stopped asking (cancelled, its process died) leaves the line after ``STALE_WAITER_MS`` so it
  never blocks the ones behind it.
- ``genbot:quota:<p>:calls``: the calls started in the last minute, for a per-minute limit.
- ``genbot:quota:<p>:seconds``: the average seconds a slot was held, for the waiting time.

Every decision is one Lua script, atomic in Redis. Without Redis there is nothing to share and
no line: slots are granted (the in-process fallback runs few jobs at once anyway).
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from django.conf import settings

from genbot.redis_client import REDIS_ERRORS, get_client

logger = logging.getLogger(__name__)

STALE_WAITER_MS = 60_000

# KEYS: leases, line, seen, calls. ARGV: job, now ms, lease ms, slots, per minute, stale ms.
# Answers {granted (1|0), fresh (1: a new lease, 0: renewed), place in line (0 when granted)}.
_ACQUIRE = """
local leases, line, seen, calls = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local job, now, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local slots, per_minute, stale = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', seen, '-inf', now - stale)) do
  redis.call('ZREM', line, gone)
  redis.call('ZREM', seen, gone)
end
if redis.call('ZSCORE', leases, job) then
  redis.call('ZADD', leases, now + lease, job)
  return {1, 0, 0}
end
redis.call('ZADD', line, 'NX', tonumber(job), job)
redis.call('ZADD', seen, now, job)
local free = slots - redis.call('ZCARD', leases)
if per_minute > 0 then
  redis.call('ZREMRANGEBYSCORE', calls, '-inf', now - 60000)
  free = math.min(free, per_minute - redis.call('ZCARD', calls))
end
local rank = redis.call('ZRANK', line, job)
if rank < free then
  redis.call('ZADD', leases, now + lease, job)
  redis.call('ZREM', line, job)
  redis.call('ZREM', seen, job)
  if per_minute > 0 then
    redis.call('ZADD', calls, now, job .. ':' .. now)
    redis.call('PEXPIRE', calls, 61000)
  end
  return {1, 1, 0}
end
return {0, 0, rank - math.max(free, 0) + 1}
"""

# KEYS: leases, line, seen, seconds. ARGV: job, seconds held (or -1). Answers the jobs now first
# in line (as many as there are free slots), for the caller to wake.
_RELEASE = """
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
local held = tonumber(ARGV[2])
if removed == 1 and held >= 0 then
  local average = tonumber(redis.call('GET', KEYS[4]) or held)
  redis.call('SET', KEYS[4], average * 0.8 + held * 0.2, 'EX', 86400)
end
local free = tonumber(ARGV[3]) - redis.call('ZCARD', KEYS[1])
if free <= 0 then return {} end
return redis.call('ZRANGE', KEYS[2], 0, free - 1)
"""


@dataclass(frozen=True)
class ProviderQuota:
    slots: int
    per_minute: int = 0
    # Seconds a job usually holds a slot, until genbot has measured it.
    typical_seconds: float = 30.0


def provider_quota(provider: str) -> ProviderQuota | None:
    """The quota of a provider by the name stored on jobs; None: unlimited (the fake)."""
    if provider == "kling":
        return ProviderQuota(slots=settings.KLING_MAX_CONCURRENT_TASKS, typical_seconds=120.0)
    if provider == "gemini":
        return ProviderQuota(
            slots=settings.GEMINI_MAX_CONCURRENT, per_minute=settings.GEMINI_REQUESTS_PER_MINUTE, typical_seconds=20.0,
        )
    return None


@dataclass(frozen=True)
class Ticket:
    """What a job got: a slot (``fresh`` when it was not holding one already), or a place in line."""

    granted: bool
    fresh: bool = False
    position: int = 0
    eta_seconds: int | None = None


def _keys(provider: str, *names: str) -> list[str]:
    return [f"genbot:quota:{provider}:{name}" for name in names]


_client = None


def client():
    """The Redis client of the quotas (and of other short per-job keys), built once."""
    global _client
    if _client is None:
        _client = get_client(role="queue")
    return _client


def _now_ms() -> int:
    return int(time.time() * 1000)


def acquire(provider: str, job_id: int) -> Ticket:
    """Take (or renew) a slot for the job, or join the line and learn the place in it."""
    quota = provider_quota(provider)
    if quota is None:
        return Ticket(granted=True)
    try:
        redis_client = client()
        granted, fresh, position = redis_client.eval(
            _ACQUIRE, 4, *_keys(provider, "leases", "line", "seen", "calls"),
            job_id, _now_ms(), settings.JOB_QUOTA_LEASE * 1000, quota.slots, quota.per_minute, STALE_WAITER_MS,
        )
    except REDIS_ERRORS as exc:
        logger.warning("quota of %s: Redis does not answer (%s); the slot is granted", provider, exc)
        return Ticket(granted=True)
    if granted:
        return Ticket(granted=True, fresh=bool(fresh))
    return Ticket(granted=False, position=int(position), eta_seconds=_eta(redis_client, provider, quota, int(position)))


def _eta(redis_client, provider: str, quota: ProviderQuota, position: int) -> int:
    """Seconds until the job at ``position`` starts: whole rounds of the slots ahead of it."""
    try:
        measured = redis_client.get(_keys(provider, "seconds")[0])
    except REDIS_ERRORS:
        measured = None
    seconds = float(measured) if measured else quota.typical_seconds
    return int(math.ceil(position / max(quota.slots, 1)) * seconds)


def renew(provider: str, job_ids, *, take: bool = False) -> None:
    """Extend the leases the given jobs hold (the ones not holding one are left alone).

    ``take``: hold a slot even if the lease had ended: a poll of a task that is running at the
    provider whatever genbot's count says (its polls stalled longer than the lease).
    """
    job_ids = list(job_ids)
    if provider_quota(provider) is None or not job_ids:
        return
    key = _keys(provider, "leases")[0]
    until = _now_ms() + settings.JOB_QUOTA_LEASE * 1000
    try:
        client().zadd(key, {str(job_id): until for job_id in job_ids}, xx=not take)
    except REDIS_ERRORS as exc:
        logger.warning("quota of %s: leases not renewed (%s)", provider, exc)


def release(provider: str, job_id: int, *, held_seconds: float | None = None) -> list[int]:
    """Give the job's slot back (and its place in line); returns the jobs now first in line.

    ``held_seconds`` (how long the job held the slot) feeds the average behind waiting times.
    """
    quota = provider_quota(provider)
    if quota is None:
        return []
    try:
        first = client().eval(
            _RELEASE, 4, *_keys(provider, "leases", "line", "seen", "seconds"),
            job_id, -1 if held_seconds is None else round(held_seconds, 3), quota.slots,
        )
    except REDIS_ERRORS as exc:
        logger.warning("quota of %s: slot of job %s not released (%s); its lease will end", provider, job_id, exc)
        return []
    return [int(waiting) for waiting in first]


def holders(provider: str) -> list[int]:
    """The jobs holding a slot now (tests, the admin)."""
    try:
        return [int(j) for j in client().zrangebyscore(_keys(provider, "leases")[0], _now_ms(), "+inf")]
    except REDIS_ERRORS:
        return []


def forget(provider: str) -> None:
    """Drop the provider's leases and line (tests)."""
    client().delete(*_keys(provider, "leases", "line", "seen", "calls", "seconds"))


def reset_client() -> None:
    """Build the client again on next use (tests that point REDIS_URL elsewhere)."""
    global _client
    _client = None
