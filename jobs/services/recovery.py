"""Recovery and clean-up: jobs whose worker died, queue messages that were lost, old files."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .. import queueing, quota
from ..models import Job, JobStatus
from .workflow import delete_files, expire_job, fail_job

logger = logging.getLogger(__name__)

STUCK_MESSAGE = _("The generation stopped unexpectedly. The money was returned to your balance.")


@dataclass(frozen=True)
class ReapReport:
    failed: int
    requeued: int
    resumed: int = 0
    expired: int = 0


def reap_stuck_jobs() -> ReapReport:
    """Resume what can be resumed, retry what may be retried, fail and refund only the rest.

    - A job whose scheduled run (a try for a slot, a poll of its task) is overdue by more than
      ``JOB_REQUEUE_AFTER`` seconds is run now: after a SIGKILL, RQ's scheduler can sit on the
      runs it was given for minutes. A video whose task exists is never failed for its worker.
    - A processing job without a task whose heartbeat is older than ``JOB_HEARTBEAT_TIMEOUT``
      lost its worker mid-call: it is queued again while it has used fewer than
      ``JOB_MAX_ATTEMPTS`` calls, else failed and refunded.
    - A pending job that never got a slot within ``JOB_QUEUE_TIMEOUT`` is failed and refunded.
    - A pending job older than ``JOB_REQUEUE_AFTER`` with no queue message and no scheduled run
      (the process died between commit and enqueue, Redis lost it) is enqueued again.
    The task's claim and the superseding schedules make every duplicate harmless.
    """
    now = timezone.now()
    margin = timedelta(seconds=settings.JOB_REQUEUE_AFTER)
    expired = 0
    too_old = now - timedelta(seconds=settings.JOB_QUEUE_TIMEOUT)
    for job in Job.objects.select_related("reservation", "customer").filter(status=JobStatus.PENDING, created_at__lt=too_old):
        expired += expire_job(job=job)
    resumed = 0
    overdue = Job.objects.filter(status__in=JobStatus.active(), next_check_at__lt=now - margin).values_list(
        "pk", "kind", "status"
    )
    for job_id, kind, status in overdue:
        logger.warning("job %s: its scheduled run is overdue; run now", job_id)
        queueing.schedule("poll" if status == JobStatus.PROCESSING else "try", job_id, kind, delay=0)
        resumed += 1
    failed = requeued = 0
    stale_before = now - timedelta(seconds=settings.JOB_HEARTBEAT_TIMEOUT)
    stuck = Job.objects.select_related("reservation", "customer").filter(
        status=JobStatus.PROCESSING, provider_task_id="", heartbeat_at__lt=stale_before
    )
    for job in stuck:
        if job.attempts < settings.JOB_MAX_ATTEMPTS and retry_stuck_job(job=job, stale_before=stale_before):
            logger.warning("job %s: no heartbeat since %s, tried again (attempt %s)", job.pk, job.heartbeat_at,
                           job.attempts + 1)
            requeued += 1
        elif fail_job(job=job, error_code="stuck", message=STUCK_MESSAGE, stale_before=stale_before):
            logger.warning("job %s: no heartbeat since %s, failed and refunded", job.pk, job.heartbeat_at)
            quota.release(job.provider, job.pk)
            failed += 1
    lost = Job.objects.filter(status=JobStatus.PENDING, next_check_at__isnull=True, created_at__lt=now - margin)
    for job_id, kind in lost.values_list("pk", "kind"):
        if not queueing.has_live_message(job_id, kind):
            logger.warning("job %s: pending with no queue message, enqueued again", job_id)
            queueing.enqueue_job(job_id, kind)
            requeued += 1
    return ReapReport(failed=failed, requeued=requeued, resumed=resumed, expired=expired)


def retry_stuck_job(*, job: Job, stale_before) -> bool:
    """Put a job whose worker died mid-call back to pending and queue it (its slot given back)."""
    moved = Job.objects.filter(
        pk=job.pk, status=JobStatus.PROCESSING, provider_task_id="", heartbeat_at__lt=stale_before
    ).update(status=JobStatus.PENDING, started_at=None, next_check_at=None)
    if not moved:
        return False
    quota.release(job.provider, job.pk)
    queueing.enqueue_job(job.pk, job.kind)
    return True


def resume_pending_jobs() -> int:
    """Queue every pending job again: a long-running process calls this when it starts.

    Jobs already queued elsewhere are claimed once (the task's conditional UPDATE).
    """
    pending = list(Job.objects.filter(status=JobStatus.PENDING).order_by("pk").values_list("pk", "kind"))
    for job_id, kind in pending:
        queueing.enqueue_job(job_id, kind)
    return len(pending)


def cleanup_results(*, now=None) -> int:
    """Delete result and input files of jobs finished more than ``RESULT_TTL_DAYS`` ago."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.RESULT_TTL_DAYS)
    expired = Job.objects.filter(
        status__in=JobStatus.finished(), completed_at__lt=cutoff, results_deleted_at__isnull=True
    ).values_list("pk", "result_files", "input_file", "input_files", "end_file")
    count = 0
    for job_id, result_files, input_file, input_files, end_file in expired.iterator():
        inputs = {*(input_files or []), *([input_file] if input_file else []), *([end_file] if end_file else [])}
        delete_files([*(result_files or []), *sorted(inputs)])
        Job.objects.filter(pk=job_id, results_deleted_at__isnull=True).update(results_deleted_at=now)
        count += 1
    return count
