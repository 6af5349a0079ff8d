"""Following a provider task (Kling) without holding a worker: start it once, poll it, finish once.

- ``start_task`` (a worker's run, after the claim): the task this job may already have is found
  by its external id (a run that died between the create and recording it), else it is created
  under that id with the callback URL; its id is recorded and the first poll scheduled. The
  worker is free again.
- ``poll_job``: one status request. Running: progress, heartbeat, the next poll scheduled
  (``next_poll_delay``: with callbacks a rare safety net, without them backing off from
  ``KLING_FIRST_POLL`` to ``KLING_POLL_INTERVAL``). Failed: the job fails and
  is refunded. Succeeded: download, store, charge and announce, once per job (a Redis claim
  keyed by the job, then ``complete_job``'s conditional UPDATE).
- Kling's callback (``/webhook/kling/<token>``) only asks for a poll now (``poll_soon``), and
  only when its body says the task has ended: the body is never trusted to change the job.
The job keeps its provider slot from the create until the task is over; each poll renews it.
"""
from __future__ import annotations

import logging
import random

from django.conf import settings
from django.core import signing
from django.utils import timezone

from genbot.redis_client import REDIS_ERRORS

from .. import queueing, quota
from ..media import media_info
from ..models import Job, JobStatus
from ..providers.base import (
    MalformedResponse,
    ProgressReporter,
    ProviderError,
    ProviderTimeout,
    RateLimited,
    RemoteTask,
    RetryableProviderError,
    RetryPolicy,
    TaskAlreadyExists,
    TaskProvider,
    call_with_retry,
    task_progress,
)
from ..providers.registry import get_provider
from ..signals import announce_progress
from .workflow import (
    DATABASE_ERRORS,
    INTERNAL_MESSAGE,
    build_request,
    complete_job,
    delete_files,
    fail_job,
    put_back,
    release_slot,
    same_moment,
    schedule_check,
    store_results,
)

logger = logging.getLogger(__name__)

CALLBACK_SALT = "jobs.kling-callback"
# A callback claiming one of these task statuses asks for no poll (see ``poll_soon``).
RUNNING_STATUSES = frozenset({"submitted", "processing"})
# Seconds the finishing claim of a job lasts: a finisher that died lets a later poll finish.
FINISH_CLAIM_SECONDS = 900


def external_id(job: Job) -> str:
    """The id genbot gives the job's task at the provider: one per job, ever."""
    return f"{settings.KLING_EXTERNAL_ID_PREFIX}-{job.pk}"


def callback_token(job: Job) -> str:
    """The job id signed with SECRET_KEY: nobody else can make genbot poll a job of their choosing."""
    return signing.Signer(salt=CALLBACK_SALT).sign(str(job.pk))


def callback_url(job: Job) -> str:
    """Where the provider POSTs the task's status changes; "" without ``PUBLIC_BASE_URL``."""
    if not settings.PUBLIC_BASE_URL:
        return ""
    return f"{settings.PUBLIC_BASE_URL}/webhook/kling/{callback_token(job)}"


def job_id_from_callback(token: str) -> int | None:
    try:
        return int(signing.Signer(salt=CALLBACK_SALT).unsign(token))
    except (signing.BadSignature, ValueError):
        return None


def next_poll_delay(elapsed: float) -> float:
    """Seconds to the next poll, give or take a tenth (tasks created together spread out).

    With Kling's callbacks (``PUBLIC_BASE_URL``) the task's end arrives by callback and a poll is
    only the safety net for a lost one: every ``KLING_CALLBACK_POLL_INTERVAL``. Without them,
    soon at first, then every ``KLING_POLL_INTERVAL`` at most.
    """
    if settings.PUBLIC_BASE_URL:
        delay = settings.KLING_CALLBACK_POLL_INTERVAL
    else:
        delay = min(settings.KLING_POLL_INTERVAL, max(settings.KLING_FIRST_POLL, elapsed / 2))
    return delay * random.uniform(0.9, 1.1)


# --- start ------------------------------------------------------------------------------------


def start_task(*, job: Job, provider: TaskProvider) -> str:
    """Find or create the job's task, record its id, schedule the first poll."""
    try:
        task_id = obtain_task(job=job, provider=provider)
    except RateLimited as exc:  # Kling 1303: the account's parallel tasks are taken
        release_slot(job)
        return "requeued" if put_back(job=job, retry_after=exc.retry_after) else "skipped"
    except ProviderError as exc:
        return _fail(job, exc)
    except DATABASE_ERRORS:
        raise
    except Exception:  # noqa: BLE001 - a bug still refunds the customer
        logger.exception("job %s crashed creating its task", job.pk)
        fail_job(job=job, error_code="internal", message=INTERNAL_MESSAGE)
        release_slot(job)
        return "failed"
    now = timezone.now()
    # next_check_at "now": a worker dying before the poll is scheduled leaves an overdue poll,
    # which the reaper resumes.
    recorded = Job.objects.filter(pk=job.pk, status=JobStatus.PROCESSING).update(
        provider_task_id=task_id, next_check_at=now, heartbeat_at=now, progress=5,
    )
    if not recorded:
        logger.info("job %s was cancelled while its task %s was created", job.pk, task_id)
        release_slot(job)
        return "cancelled"
    job.provider_task_id, job.progress = task_id, 5
    logger.info("job %s: task %s", job.pk, task_id)
    schedule_check(job=job, delay=next_poll_delay(0.0), run="poll")
    return "polling"


def obtain_task(*, job: Job, provider: TaskProvider) -> str:
    """The task id of the job: an existing task under its external id, or a new one.

    Only a job that was claimed before (``attempts`` > 1) or whose create failed in a way
    that may have created it (a time-out, a 5xx, "already exists") looks first.
    """
    request, ext = build_request(job), external_id(job)
    may_exist = [job.attempts > 1]

    def attempt() -> str:
        if may_exist[0]:
            found = provider.find_task(job.kind, external_id=ext)
            if found is not None:
                return found.task_id
        may_exist[0] = True
        try:
            return provider.create_task(request, external_id=ext, callback_url=callback_url(job))
        except TaskAlreadyExists:
            found = provider.find_task(job.kind, external_id=ext)
            if found is None:
                raise
            return found.task_id

    return call_with_retry(attempt, ProgressReporter(), policy=RetryPolicy(retry_rate_limits=False),
                           what=f"job {job.pk} task")


# --- poll -------------------------------------------------------------------------------------


def poll_job(*, job_id: int, due_ms: int | None = None) -> str:
    """One look at the job's task; returns "polling", "completed", "failed", "cancelled" or "skipped".

    ``due_ms``: a scheduled poll, which a newer schedule supersedes (so a job has one chain of
    polls whatever started extra ones). Without it (a callback, the reaper) it polls at once.
    """
    job = Job.objects.select_related("customer", "reservation").filter(pk=job_id).first()
    if job is None:
        return "skipped"
    if job.status != JobStatus.PROCESSING or not job.provider_task_id:
        if job.status in JobStatus.finished():
            quota.release(job.provider, job.pk)  # cancelled while its task ran: free the slot
        return "skipped"
    if due_ms is not None and not same_moment(job.next_check_at, due_ms):
        return "skipped"
    provider = get_provider(job.provider)
    quota.renew(job.provider, [job.pk], take=True)
    elapsed = (timezone.now() - job.started_at).total_seconds() if job.started_at else 0.0
    try:
        task = provider.get_task(job.kind, task_id=job.provider_task_id)
    except (RetryableProviderError, MalformedResponse) as exc:
        logger.info("job %s: poll of task %s failed (%s); polling again", job.pk, job.provider_task_id, exc)
        task = RemoteTask(task_id=job.provider_task_id, state=RemoteTask.RUNNING)
    except ProviderError as exc:
        return _fail(job, exc)
    if task.state == RemoteTask.FAILED:
        return _fail(job, provider.failure(task))
    if task.state == RemoteTask.SUCCEEDED:
        return finish_task(job=job, provider=provider, task=task)
    if elapsed > provider.task_timeout:
        # Not retried: a new task would be a second paid generation.
        return _fail(job, ProviderTimeout(f"task {task.task_id} still running after {elapsed:.0f}s"))
    progress = max(job.progress, task_progress(elapsed, provider.task_timeout))
    if progress != job.progress:
        Job.objects.filter(pk=job.pk, status=JobStatus.PROCESSING).update(progress=progress)
        job.progress = progress
        announce_progress(job)
    schedule_check(job=job, delay=next_poll_delay(elapsed), run="poll")
    return "polling"


def poll_soon(*, job_id: int, reported_status: str | None = None) -> bool:
    """Poll the job's task now (the provider said its status changed); False: nothing to poll.

    ``reported_status`` is the ``task_status`` the callback's body claims. Kling calls on every
    change (submitted, processing, then succeed or failed), and only the end of a task is worth
    a poll before the scheduled one: a body saying the task still runs (true or forged) leaves
    the scheduled polls as they are. Any other body (an end, nothing, nonsense) asks for a
    poll, which reads the truth from Kling itself; the body never changes the job.
    """
    if reported_status in RUNNING_STATUSES:
        return False
    job = Job.objects.filter(pk=job_id, status=JobStatus.PROCESSING).exclude(provider_task_id="").first()
    if job is None:
        return False
    queueing.schedule("poll", job.pk, job.kind, delay=0)
    return True


def _fail(job: Job, error: ProviderError) -> str:
    logger.warning("job %s: task %s failed: %s %s", job.pk, job.provider_task_id, error.code, error)
    fail_job(job=job, error_code=error.code, message=error.user_message)
    release_slot(job)
    return "failed"


# --- finish -----------------------------------------------------------------------------------


def _claim_finish(job: Job) -> bool:
    """Only one poll downloads and stores a job's result (a callback and a poll may both see it)."""
    try:
        return bool(quota.client().set(f"genbot:finishing:{job.pk}", 1, nx=True, ex=FINISH_CLAIM_SECONDS))
    except REDIS_ERRORS:
        return True  # no Redis: the in-process fallback polls each job from one chain


def finish_task(*, job: Job, provider: TaskProvider, task: RemoteTask) -> str:
    """Download, store, charge and announce a succeeded task's result, once."""
    if not _claim_finish(job):
        return "skipped"
    stored: list[str] = []
    try:
        result = provider.fetch_result(task, ProgressReporter())
        info = [media_info(item.content, item.mime_type) for item in result.media]
        stored = store_results(job=job, media=result.media)
        if complete_job(job=job, result_files=stored, result_mime=result.media[0].mime_type, cost=result.cost,
                        result_info=info):
            return "completed"
        delete_files(stored)  # cancelled meanwhile: not charged
        return "cancelled"
    except ProviderError as exc:
        logger.warning("job %s: the result of task %s failed: %s %s", job.pk, task.task_id, exc.code, exc)
        fail_job(job=job, error_code=exc.code, message=exc.user_message)
        return "failed"
    except DATABASE_ERRORS:
        delete_files(stored)  # a later poll finishes it
        raise
    except Exception:  # noqa: BLE001 - a bug still refunds the customer
        logger.exception("job %s crashed finishing task %s", job.pk, task.task_id)
        delete_files(stored)
        fail_job(job=job, error_code="internal", message=INTERNAL_MESSAGE)
        return "failed"
    finally:
        release_slot(job)
        _unclaim_finish(job)  # finished (or left for a later poll): nobody holds it any more


def _unclaim_finish(job: Job) -> None:
    try:
        quota.client().delete(f"genbot:finishing:{job.pk}")
    except REDIS_ERRORS:
        pass
