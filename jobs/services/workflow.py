"""The worker's side of a job: a provider slot, the claim, the provider call, store, charge, announce.

``run_job`` is idempotent: RQ runs a job at least once, and the claim (a conditional UPDATE
from pending) lets only the first delivery work; charging is keyed by the reservation. A job
over its provider's quota waits pending, in line (``jobs.quota``). Tasks that take minutes
(Kling) are started here and followed by short polls (``polling``). Whoever finishes a job
(here, a poll, a cancel, the reaper) announces it with ``announce_finished`` inside the
finishing transaction.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from billing import services as billing

from .. import catalog, queueing, quota
from ..heartbeat import RunningJob, monitor
from ..media import media_info
from ..models import Job, JobStatus
from ..providers.base import GenerationRequest, JobCancelled, ProviderError, RateLimited, RetryPolicy, TaskProvider
from ..providers.registry import get_provider
from ..signals import announce_progress, job_finished

logger = logging.getLogger(__name__)

INTERNAL_MESSAGE = _("The generation failed. The money was returned to your balance.")
QUEUE_TIMEOUT_MESSAGE = _(
    "The generation service was too busy to start your request within %(minutes)s minutes. "
    "The money was returned to your balance; please try again later."
)
# Seconds at most between two tries of a job waiting in line (a freed slot wakes it sooner).
WAIT_RETRY_MAX = 5.0
# What a lost database connection raises; the job is left to the reaper, not failed.
DATABASE_ERRORS = (OperationalError, InterfaceError)


def run_job(*, job_id: int, due_ms: int | None = None) -> str:
    """A worker's turn at a pending job: a provider slot, the claim, then the generation.

    Over the provider's quota the job stays pending, its place in line recorded and shown, and
    this run schedules the next try (``due_ms``: a scheduled try, which a newer schedule
    supersedes). With a slot: a task provider's task is started (``polling.start_task``) and
    the worker is free again; any other provider is called here, with retries. Returns what
    happened ("completed", "failed", "cancelled", "polling", "waiting", "expired", "skipped",
    "requeued"), for logs and tests. Any failure refunds and leaves a message fit for the
    customer on the job.
    """
    job = Job.objects.select_related("customer").filter(pk=job_id, status=JobStatus.PENDING).first()
    if job is None or (due_ms is not None and not same_moment(job.next_check_at, due_ms)):
        logger.info("job %s: skipped (a repeated delivery, or a try superseded by a newer one)", job_id)
        return "skipped"
    if job.created_at < timezone.now() - timedelta(seconds=settings.JOB_QUEUE_TIMEOUT):
        return "expired" if expire_job(job=job) else "skipped"
    ticket = quota.acquire(job.provider, job.pk)
    if not ticket.granted:
        wait_in_line(job=job, ticket=ticket)
        return "waiting"
    claimed = claim_job(job_id=job_id)
    if claimed is None:  # another delivery claimed it (or a cancel won) since the look above
        logger.info("job %s: skipped (a repeated delivery claimed it first)", job_id)
        # The slot is the job's: the delivery running it keeps it; one taken for a job already
        # over goes back.
        if ticket.fresh and not Job.objects.filter(pk=job_id, status=JobStatus.PROCESSING).exists():
            release_slot(job)
        return "skipped"
    provider = get_provider(claimed.provider)
    if isinstance(provider, TaskProvider):
        from .polling import start_task

        return start_task(job=claimed, provider=provider)
    return generate_now(job=claimed, provider=provider)


def generate_now(*, job: Job, provider) -> str:
    """Call a provider that answers in one call (Gemini, the fake), holding the job's slot."""
    run = RunningJob(job)
    beats = monitor()
    beats.add(run)
    stored: list[str] = []
    try:
        result = provider.generate_with_retry(build_request(job), run, policy=RetryPolicy(retry_rate_limits=False))
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
        logger.info("job %s was cancelled while running: stopped without charging", job.pk)
        return "cancelled"
    except RateLimited as exc:
        return "requeued" if put_back(job=job, retry_after=exc.retry_after) else "skipped"
    except ProviderError as exc:
        logger.warning("job %s failed: %s %s", job.pk, exc.code, exc)
        fail_job(job=job, error_code=exc.code, message=exc.user_message)
        return "failed"
    except DATABASE_ERRORS:
        # The database went away mid-job: nothing can be recorded now. The job stays processing
        # with its money held; its heartbeat stops and the reaper tries it again.
        logger.exception("job %s: the database failed; left for the reaper", job.pk)
        raise
    except Exception:  # noqa: BLE001 - any bug (or RQ's job time-out) still refunds the customer
        logger.exception("job %s crashed", job.pk)
        delete_files(stored)
        fail_job(job=job, error_code="internal", message=INTERNAL_MESSAGE)
        return "failed"
    finally:
        beats.remove(run)
        release_slot(job)


def same_moment(moment, due_ms: int) -> bool:
    return moment is not None and round(moment.timestamp() * 1000) == due_ms


def schedule_check(*, job: Job, delay: float, run: str) -> None:
    """Schedule the job's next run (``run``: "try" for a slot, "poll" of its task) ``delay`` s on.

    The moment is written on the job first: a run scheduled before for another moment finds it
    changed and does nothing, so a job has one chain of scheduled runs however many were
    started (a callback, the reaper, a freed slot).
    """
    due = timezone.now() + timedelta(seconds=delay)
    due = due.replace(microsecond=due.microsecond // 1000 * 1000)
    Job.objects.filter(pk=job.pk).update(next_check_at=due, heartbeat_at=timezone.now())
    job.next_check_at = due
    queueing.schedule(run, job.pk, job.kind, delay=delay, due_ms=round(due.timestamp() * 1000))


def wait_in_line(*, job: Job, ticket: quota.Ticket) -> None:
    """Record the job's place in line, tell the customer when it moved, try again shortly."""
    if (job.queue_position, job.queue_eta) != (ticket.position, ticket.eta_seconds):
        Job.objects.filter(pk=job.pk, status=JobStatus.PENDING).update(
            queue_position=ticket.position, queue_eta=ticket.eta_seconds
        )
        job.queue_position, job.queue_eta = ticket.position, ticket.eta_seconds
        announce_progress(job)
    # The first in line asks again soon; the ones behind it are woken by a freed slot anyway.
    schedule_check(job=job, delay=min(1.0 + ticket.position, WAIT_RETRY_MAX), run="try")


def put_back(*, job: Job, retry_after: float | None = None) -> bool:
    """The provider refused for its rate or concurrency limit: the job waits again, its attempt
    given back (waiting is not failing). False when the job is no longer processing. The
    caller gives the slot back."""
    moved = Job.objects.filter(pk=job.pk, status=JobStatus.PROCESSING, provider_task_id="").update(
        status=JobStatus.PENDING, attempts=Greatest(F("attempts") - 1, 0), started_at=None,
    )
    if not moved:
        return False
    job.status = JobStatus.PENDING
    logger.info("job %s: the provider is at its limit; back in line", job.pk)
    schedule_check(job=job, delay=max(retry_after or 0.0, 2.0), run="try")
    return True


def release_slot(job: Job) -> None:
    """Give the job's provider slot back and wake the jobs now first in line."""
    held = (timezone.now() - job.started_at).total_seconds() if job.started_at else None
    for waiting in quota.release(job.provider, job.pk, held_seconds=held):
        queueing.enqueue_job(waiting, job.kind)


def build_request(job: Job) -> GenerationRequest:
    """What the provider is asked for: the job's model id, prompt, options and pictures.

    The model id is the one the job was priced for ("" on jobs from before the catalogue: the
    provider's setting). Jobs from before several inputs have only ``input_file``.
    """
    names = job.input_files or ([job.input_file.name] if job.input_file else [])
    images = tuple((read_stored(name), _mime_of(name, job.input_mime)) for name in names)
    end_image = read_stored(job.end_file.name) if job.end_file else None
    options = job.options or {}
    return GenerationRequest(
        kind=job.kind, prompt=job.prompt, input_image=images[0][0] if images else None,
        input_mime=images[0][1] if images else "", input_images=images,
        aspect_ratio=options.get("aspect_ratio", ""), duration=int(options.get("duration") or catalog.VIDEO_DURATIONS[0]),
        mode=options.get("mode") or catalog.VIDEO_MODES[0], model=job.model_id,
        image_size=options.get("image_size", ""), negative_prompt=options.get("negative_prompt", ""),
        sound=bool(options.get("sound")), end_image=end_image, end_mime=job.end_mime if end_image else "",
    )


def read_stored(name: str) -> bytes:
    """A stored file's bytes (``FileNotFoundError`` when it is gone)."""
    with default_storage.open(name, "rb") as handle:
        return handle.read()


def _mime_of(name: str, fallback: str) -> str:
    """An input's MIME type from the extension submit gave it (``upload.<subtype>``)."""
    subtype = name.rsplit(".", 1)[-1].lower()
    return next((mime for mime in catalog.INPUT_IMAGE_FORMATS.values() if mime.split("/")[1] == subtype), fallback)


def claim_job(*, job_id: int) -> Job | None:
    """Mark a pending job processing for this worker; None when it is not pending any more.

    RQ delivers at least once: a second delivery of a job already claimed, finished or
    cancelled finds no pending row and leaves it alone. One statement: the conditional UPDATE
    returns the claimed row.
    """
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    claimed = Job.objects.raw(
        f"UPDATE {Job._meta.db_table} SET status = %s, started_at = %s, heartbeat_at = %s, attempts = attempts + 1, "
        "queue_position = NULL, queue_eta = NULL, next_check_at = NULL WHERE id = %s AND status = %s RETURNING *",
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


def fail_job(*, job: Job, error_code: str, message, stale_before=None, status: str = JobStatus.PROCESSING) -> bool:
    """Refund and mark a job failed; False if something else finished it first.

    The job must still be in ``status`` (processing; pending for one that never started).
    ``message`` (lazy) is rendered in the customer's language. ``stale_before`` (the reaper)
    fails the job only if its heartbeat is still older than that moment.
    """
    language = getattr(job.customer, "language", None) or settings.LANGUAGE_CODE
    with translation.override(language):
        text = str(message)[:500]
    conditions = {"pk": job.pk, "status": status}
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


def expire_job(*, job: Job) -> bool:
    """Fail and refund a job that waited ``JOB_QUEUE_TIMEOUT`` without getting a provider slot."""
    minutes = max(1, settings.JOB_QUEUE_TIMEOUT // 60)
    message = QUEUE_TIMEOUT_MESSAGE % {"minutes": minutes}
    expired = fail_job(job=job, error_code="queue_timeout", message=message, status=JobStatus.PENDING)
    if expired:
        quota.release(job.provider, job.pk)
        logger.warning("job %s: no provider slot in %s minutes, failed and refunded", job.pk, minutes)
    return expired


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
