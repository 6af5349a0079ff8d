"""Recovery and clean-up: jobs whose worker died, queue messages that were lost, old files."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .. import queueing
from ..models import Job, JobStatus
from .workflow import delete_files, fail_job

logger = logging.getLogger(__name__)

STUCK_MESSAGE = _("The generation stopped unexpectedly. The money was returned to your balance.")



@dataclass(frozen=True)
class ReapReport:
    failed: int
    requeued: int


def reap_stuck_jobs() -> ReapReport:
    """Fail and refund processing jobs whose heartbeat stopped; re-send lost pending jobs.

    A processing job whose heartbeat is older than ``JOB_HEARTBEAT_TIMEOUT`` seconds lost its
    worker (killed, machine gone). A pending job older than ``JOB_REQUEUE_AFTER`` seconds whose
    queue message is gone (the process died between commit and enqueue, Redis lost it) is
    enqueued again; the task's claim makes a duplicate harmless.
    """
    now = timezone.now()
    stale_before = now - timedelta(seconds=settings.JOB_HEARTBEAT_TIMEOUT)
    failed = 0
    stuck = Job.objects.select_related("reservation", "customer").filter(
        status=JobStatus.PROCESSING, heartbeat_at__lt=stale_before
    )
    for job in stuck:
        if fail_job(job=job, error_code="stuck", message=STUCK_MESSAGE, stale_before=stale_before):
            logger.warning("job %s: no heartbeat since %s, failed and refunded", job.pk, job.heartbeat_at)
            failed += 1
    requeued = 0
    lost_before = now - timedelta(seconds=settings.JOB_REQUEUE_AFTER)
    for job_id, kind in Job.objects.filter(status=JobStatus.PENDING, created_at__lt=lost_before).values_list("pk", "kind"):
        if not queueing.has_live_message(job_id, kind):
            logger.warning("job %s: pending with no queue message, enqueued again", job_id)
            queueing.enqueue_job(job_id, kind)
            requeued += 1
    return ReapReport(failed=failed, requeued=requeued)


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
    ).values_list("pk", "result_files", "input_file")
    count = 0
    for job_id, result_files, input_file in expired.iterator():
        delete_files([*(result_files or []), *([input_file] if input_file else [])])
        Job.objects.filter(pk=job_id, results_deleted_at__isnull=True).update(results_deleted_at=now)
        count += 1
    return count
