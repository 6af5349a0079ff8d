"""The worker's side of a job: claim it, call the provider, store the result, charge, announce.

``run_job`` is idempotent: RQ runs a job at least once, and the claim (a conditional UPDATE
from pending) lets only the first delivery work; charging is keyed by the reservation. Whoever
finishes a job (here, a cancel, the reaper) announces it with ``announce_finished`` inside the
finishing transaction.
"""
from __future__ import annotations

import logging

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from billing import services as billing

from .. import catalog
from ..heartbeat import RunningJob, monitor
from ..media import media_info
from ..models import Job, JobStatus
from ..providers.base import GenerationRequest, JobCancelled, ProviderError
from ..providers.registry import get_provider
from ..signals import job_finished

logger = logging.getLogger(__name__)

INTERNAL_MESSAGE = _("The generation failed. The money was returned to your balance.")


def run_job(*, job_id: int) -> str:
    """Generate one job: claim, call the provider with retries, store, charge, announce.

    Returns what happened ("completed", "failed", "cancelled", "skipped"), for logs and tests.
    Any failure refunds and leaves a message fit for the customer on the job.
    """
    job = claim_job(job_id=job_id)
    if job is None:
        logger.info("job %s is not pending: skipped (a repeated delivery)", job_id)
        return "skipped"
    run = RunningJob(job)
    beats = monitor()
    beats.add(run)
    stored: list[str] = []
    try:
        result = get_provider(job.provider).generate_with_retry(build_request(job), run)
        run.check_cancelled()
        info = [media_info(item.content, item.mime_type) for item in result.media]
        stored = store_results(job=job, media=result.media)
        completed = complete_job(
            job=job, result_files=stored, result_mime=result.media[0].mime_type, cost=result.cost, result_info=info,
        )
        if completed:
            return "completed"
        # Cancelled or reaped while the result was being stored: it was not charged.
        delete_files(stored)
        return "cancelled"
    except JobCancelled:
        logger.info("job %s was cancelled while running: stopped without charging", job_id)
        return "cancelled"
    except ProviderError as exc:
        logger.warning("job %s failed: %s %s", job_id, exc.code, exc)
        fail_job(job=job, error_code=exc.code, message=exc.user_message)
        return "failed"
    except Exception:  # noqa: BLE001 - any bug (or RQ's job time-out) still refunds the customer
        logger.exception("job %s crashed", job_id)
        delete_files(stored)
        fail_job(job=job, error_code="internal", message=INTERNAL_MESSAGE)
        return "failed"
    finally:
        beats.remove(run)


def build_request(job: Job) -> GenerationRequest:
    """What the provider is asked for: the job's prompt, options and input picture."""
    image = None
    if job.input_file:
        with default_storage.open(job.input_file.name, "rb") as handle:
            image = handle.read()
    options = job.options or {}
    return GenerationRequest(
        kind=job.kind, prompt=job.prompt, input_image=image, input_mime=job.input_mime,
        aspect_ratio=options.get("aspect_ratio", ""), duration=int(options.get("duration") or catalog.VIDEO_DURATIONS[0]),
        mode=options.get("mode") or catalog.VIDEO_MODES[0],
    )


def claim_job(*, job_id: int) -> Job | None:
    """Mark a pending job processing for this worker; None when it is not pending any more.

    RQ delivers at least once: a second delivery of a job already claimed, finished or
    cancelled finds no pending row and leaves it alone. One statement: the conditional UPDATE
    returns the claimed row.
    """
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    claimed = Job.objects.raw(
        f"UPDATE {Job._meta.db_table} SET status = %s, started_at = %s, heartbeat_at = %s, attempts = attempts + 1 "
        "WHERE id = %s AND status = %s RETURNING *",
        [JobStatus.PROCESSING, now, now, job_id, JobStatus.PENDING],
    )
    return next(iter(claimed), None)


def complete_job(
    *, job: Job, result_files: list[str], result_mime: str, cost: int | None = None,
    result_info: list[dict] | None = None,
) -> bool:
    """Charge the reservation and mark the job completed; False if it was cancelled or reaped meanwhile.

    ``cost`` is what the provider says it cost, at most the estimate (default: the estimate).
    ``result_info`` holds, per result file, what was read from it (``jobs.media.media_info``).
    """
    result_info = result_info or []
    cost = job.cost_estimate if cost is None else max(0, min(cost, job.cost_estimate))
    now = timezone.now()
    with transaction.atomic(durable=True):
        moved = Job.objects.filter(pk=job.pk, status=JobStatus.PROCESSING).update(
            status=JobStatus.COMPLETED, progress=100, cost_actual=cost, result_files=result_files,
            result_mime=result_mime, result_info=result_info, completed_at=now,
        )
        if not moved:
            return False
        if job.reservation is not None:
            billing.charge_reserved_balance(reservation=job.reservation, amount=cost)
        job.status, job.progress, job.cost_actual = JobStatus.COMPLETED, 100, cost
        job.result_files, job.result_mime, job.completed_at = result_files, result_mime, now
        job.result_info = result_info
        announce_finished(job)
    return True


def fail_job(*, job: Job, error_code: str, message, stale_before=None) -> bool:
    """Refund and mark a processing job failed; False if something else finished it first.

    ``message`` (lazy) is rendered in the customer's language. ``stale_before`` (the reaper)
    fails the job only if its heartbeat is still older than that moment.
    """
    language = getattr(job.customer, "language", None) or settings.LANGUAGE_CODE
    with translation.override(language):
        text = str(message)[:500]
    conditions = {"pk": job.pk, "status": JobStatus.PROCESSING}
    if stale_before is not None:
        conditions["heartbeat_at__lt"] = stale_before
    now = timezone.now()
    with transaction.atomic(durable=True):
        moved = Job.objects.filter(**conditions).update(
            status=JobStatus.FAILED, error_code=error_code[:32], error=text, completed_at=now,
        )
        if not moved:
            return False
        if job.reservation is not None:
            billing.refund_balance(reservation=job.reservation)
        job.status, job.error_code, job.error, job.completed_at = JobStatus.FAILED, error_code, text, now
        announce_finished(job)
    return True


def store_results(*, job: Job, media) -> list[str]:
    """Write result media to Django's storage (local disk, or S3 when configured)."""
    day = timezone.now()
    return [
        default_storage.save(f"jobs/results/{day:%Y/%m/%d}/job-{job.pk}-{index}.{item.extension}", ContentFile(item.content))
        for index, item in enumerate(media)
    ]


def delete_files(names) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except Exception:  # noqa: BLE001 - a missing file is already gone
            logger.warning("could not delete %s", name, exc_info=True)


class _ReceiverFailed(Exception):
    """Rolls the receivers' savepoint back."""


def announce_finished(job: Job) -> None:
    """Send ``job_finished`` in the caller's transaction (expects one: the job's finishing change).

    A failing receiver never undoes or fails the job: the receivers run in a savepoint, which
    is rolled back (their writes with it) and the failure logged.
    """
    try:
        with transaction.atomic():
            for receiver, outcome in job_finished.send_robust(sender=Job, job=job):
                if isinstance(outcome, Exception):
                    logger.error("job %s: job_finished receiver %r failed", job.pk, receiver, exc_info=outcome)
                    raise _ReceiverFailed
    except _ReceiverFailed:
        pass
