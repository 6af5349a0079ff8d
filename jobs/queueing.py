"""Getting a job to a worker: an RQ queue when Redis answers, else a thread pool in this process.

Whether Redis answers is asked with a ``PING`` on a connection with a short socket timeout
and the answer is trusted for ``JOB_REDIS_CHECK_INTERVAL`` seconds, so a chat handler never
waits on a dead Redis more than once per interval. An enqueue that fails all the same marks
Redis down and falls back. The fallback pool is bounded (``JOB_FALLBACK_THREADS``), created on
first use, and runs the same task as the RQ workers, found by the same dotted path
(``TASK_PATH``), so this module imports neither the task nor the services that import it; a job
never runs in the caller's thread.
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from concurrent.futures import Future, ThreadPoolExecutor

import django_rq
import redis
from django.conf import settings
from django.db import connections
from django.utils.module_loading import import_string

from genbot.redis_client import REDIS_ERRORS, get_client

from . import catalog

logger = logging.getLogger(__name__)

TASK_PATH = "jobs.tasks.run_job"
# What ``schedule`` runs: a try of a pending job (for a provider slot), a poll of a task.
SCHEDULED_PATHS = {"try": TASK_PATH, "poll": "jobs.tasks.poll_job"}


def queue_name_for(kind: str) -> str:
    return "videos" if catalog.is_video(kind) else "images"


def rq_job_id(job_id: int) -> str:
    """The RQ job id of a generation job: one per job, so a lost message is easy to check."""
    return f"genbot-job-{job_id}"


# --- is Redis there? ----------------------------------------------------------------------------

_connections: dict[str, redis.Redis] = {}
_health: dict[str, tuple[float, bool]] = {}
_lock = threading.Lock()


def _queue_url(queue_name: str) -> str:
    return settings.RQ_QUEUES[queue_name]["URL"]


def redis_connection(queue_name: str = "default") -> redis.Redis:
    """A connection to the queue's Redis with short time-outs (one per URL per process)."""
    url = _queue_url(queue_name)
    conn = _connections.get(url)
    if conn is None:
        conn = get_client(url, role="queue")
        _connections[url] = conn
    return conn


def redis_available(queue_name: str = "default") -> bool:
    url = _queue_url(queue_name)
    checked = _health.get(url)
    now = time.monotonic()
    if checked is not None and now - checked[0] < settings.JOB_REDIS_CHECK_INTERVAL:
        return checked[1]
    try:
        conn = redis_connection(queue_name)
        # A ping answers within the connect time-out when Redis is down.
        ok = bool(conn.ping())
    except REDIS_ERRORS as exc:
        logger.warning("Redis at %s does not answer (%s): jobs run in the in-process pool", url, exc)
        ok = False
    _health[url] = (now, ok)
    return ok


def mark_redis_down(queue_name: str) -> None:
    _health[_queue_url(queue_name)] = (time.monotonic(), False)


def forget_redis_health() -> None:
    """Ask Redis again on the next enqueue (tests, and after a configuration change)."""
    _health.clear()
    _connections.clear()


# --- the in-process fallback -----------------------------------------------------------------

_pool: ThreadPoolExecutor | None = None
_inflight: set[int] = set()


def fallback_pool() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=settings.JOB_FALLBACK_THREADS, thread_name_prefix="genbot-job")
        return _pool


def _run_in_pool(job_id: int, path: str | None = None, due_ms: int | None = None) -> None:
    try:
        import_string(path or TASK_PATH)(job_id, due_ms)
    except Exception:  # noqa: BLE001 - the pool has nobody to raise to
        logger.exception("job %s failed in the fallback pool", job_id)
    finally:
        with _lock:
            _inflight.discard(job_id)
        connections.close_all()  # this thread's connections only


def submit_to_fallback(job_id: int, path: str | None = None, due_ms: int | None = None) -> Future | None:
    """Run the job's task in this process's pool; None if the job is already queued or running here."""
    with _lock:
        if job_id in _inflight:
            return None
        _inflight.add(job_id)
    return fallback_pool().submit(_run_in_pool, job_id, path, due_ms)


def in_fallback(job_id: int) -> bool:
    return job_id in _inflight


def shutdown_fallback(wait: bool = True) -> None:
    """Let running jobs finish (SIGTERM) and drop the pool."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=wait, cancel_futures=not wait)


# --- enqueue ---------------------------------------------------------------------------------


def enqueue_job(job_id: int, kind: str) -> str:
    """Send the job to a worker; returns "rq" or "thread". Call after the job is committed."""
    queue_name = queue_name_for(kind)
    if redis_available(queue_name):
        try:
            queue = django_rq.get_queue(queue_name, connection=redis_connection(queue_name))
            queue.enqueue(
                TASK_PATH, job_id, job_id=rq_job_id(job_id),
                result_ttl=3600, failure_ttl=7 * 86400, description=f"generation job {job_id}",
            )
            return "rq"
        except REDIS_ERRORS as exc:
            logger.warning("enqueue of job %s failed (%s): using the in-process pool", job_id, exc)
            mark_redis_down(queue_name)
    submit_to_fallback(job_id)
    return "thread"


def schedule(run: str, job_id: int, kind: str, *, delay: float, due_ms: int | None = None) -> str:
    """Run the job's task ``run`` ("try" or "poll") in ``delay`` seconds; returns "rq" or "thread".

    With Redis, RQ's scheduler (``enqueue_in``) moves it to the queue when due; a poll is a job
    of a few milliseconds. Without, a timer hands it to the in-process pool.
    """
    path, queue_name = SCHEDULED_PATHS[run], queue_name_for(kind)
    if redis_available(queue_name):
        try:
            queue = django_rq.get_queue(queue_name, connection=redis_connection(queue_name))
            options = {"result_ttl": 0, "failure_ttl": 86400, "description": f"{run} of job {job_id}"}
            if delay > 0:
                queue.enqueue_in(timedelta(seconds=delay), path, job_id, due_ms, **options)
            else:
                queue.enqueue(path, job_id, due_ms, **options)
            return "rq"
        except REDIS_ERRORS as exc:
            logger.warning("scheduling the %s of job %s failed (%s): using the in-process pool", run, job_id, exc)
            mark_redis_down(queue_name)
    timer = threading.Timer(max(delay, 0.0), submit_to_fallback, args=(job_id, path, due_ms))
    timer.daemon = True
    timer.start()
    return "thread"


def has_live_message(job_id: int, kind: str) -> bool:
    """Is the job's queue message still waiting or running somewhere?"""
    if in_fallback(job_id):
        return True
    queue_name = queue_name_for(kind)
    if not redis_available(queue_name):
        return False
    from rq.job import Job as RQJob, JobStatus as RQStatus
    from rq.exceptions import NoSuchJobError

    try:
        rq_job = RQJob.fetch(rq_job_id(job_id), connection=redis_connection(queue_name))
        status = rq_job.get_status(refresh=False)
    except NoSuchJobError:
        return False
    except REDIS_ERRORS:
        return False
    return status in (RQStatus.QUEUED, RQStatus.STARTED, RQStatus.SCHEDULED, RQStatus.DEFERRED)
