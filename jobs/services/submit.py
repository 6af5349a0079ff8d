"""Asking for a job: check the request, quote it, submit it (reserving its price), cancel, retry."""
from __future__ import annotations

import io
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from PIL import Image, UnidentifiedImageError

from billing import services as billing
from billing.exceptions import CustomerBlocked
from billing.models import Customer

from .. import catalog, queueing, quota
from ..exceptions import (
    EmptyPrompt,
    ImageTooManyPixels,
    ImageTooSmall,
    InvalidJobInput,
    InvalidJobOption,
    JobNotCancellable,
    JobNotRetryable,
    MediaRequired,
    MediaTooLarge,
    PriceChanged,
    PromptTooLong,
    TooManyActiveJobs,
    UnsupportedMedia,
)
from ..models import Job, JobStatus
from ..providers.registry import provider_name_for
from ..selectors import estimate_price
from .workflow import announce_finished


# --- validation -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckedInput:
    prompt: str
    options: dict
    image: bytes | None
    mime: str


def check_job_input(
    *, kind: str, prompt: str, input_image: bytes | None = None, aspect_ratio: str = "",
    duration: int | None = None, mode: str | None = None,
) -> CheckedInput:
    """Validate a request before any money moves; raises ``InvalidJobInput`` subclasses.

    What each kind takes and the limits on it are the catalogue's (``jobs.catalog``).
    """
    spec = catalog.kind_spec(kind)
    limits = catalog.input_limits(kind)
    prompt = (prompt or "").strip()
    if not prompt:
        raise EmptyPrompt()
    if len(prompt) > limits.prompt_chars:
        raise PromptTooLong(limit=limits.prompt_chars)
    options = catalog.check_options(kind=kind, aspect_ratio=aspect_ratio, duration=duration, mode=mode)
    image, mime = None, ""
    if spec.input_image:
        if not input_image:
            raise MediaRequired()
        mime = _check_image(input_image, limits=limits)
        image = input_image
    elif input_image:
        raise InvalidJobOption()
    return CheckedInput(prompt=prompt, options=options, image=image, mime=mime)


def _check_image(data: bytes, *, limits: catalog.InputLimits) -> str:
    """The picture's MIME type, read from its header only: nothing is decoded here.

    A few kilobytes can declare billions of pixels (a decompression bomb): the declared size is
    checked against ``limits.image_pixels`` before anything (a provider, the fake) decodes it.
    """
    if len(data) > limits.image_bytes:
        raise MediaTooLarge(limit_bytes=limits.image_bytes)
    try:
        with Image.open(io.BytesIO(data)) as image:
            image_format, (width, height) = image.format, image.size
    except Image.DecompressionBombError:
        # Pillow refuses to open over twice its own limit (MAX_IMAGE_PIXELS).
        raise ImageTooManyPixels(limit_pixels=limits.image_pixels) from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise UnsupportedMedia() from None
    if image_format not in catalog.INPUT_IMAGE_FORMATS:
        raise UnsupportedMedia()
    if width * height > limits.image_pixels:
        raise ImageTooManyPixels(limit_pixels=limits.image_pixels)
    if min(width, height) < limits.image_min_side:
        raise ImageTooSmall(min_side=limits.image_min_side)
    return catalog.INPUT_IMAGE_FORMATS[image_format]


def quote_job(*, kind: str, mode: str = "", duration: int = 0) -> tuple[str, int]:
    """(provider, price in kopecks) a job of this kind would get now: shown before confirming."""
    provider = provider_name_for(kind)
    return provider, estimate_price(kind=kind, provider=provider, mode=mode or "", duration=duration or 0)


# --- submit and cancel ------------------------------------------------------------------------


# Two statements run on every submit, written as SQL to skip the ORM's compile step.
_LOCK_CUSTOMER_SQL = f"SELECT is_blocked FROM {Customer._meta.db_table} WHERE id = %s"
_COUNT_ACTIVE_SQL = f"SELECT count(*) FROM {Job._meta.db_table} WHERE customer_id = %s AND status IN (%s, %s)"


def _lock_customer(customer_id: int) -> bool:
    """Lock the customer's row until the transaction ends; returns whether staff blocked them.

    The row is the per-customer lock that makes "count active jobs, then insert" safe against
    concurrent submits (on SQLite the IMMEDIATE transaction is the lock).
    """
    sql = _LOCK_CUSTOMER_SQL + (" FOR UPDATE" if connection.features.has_select_for_update else "")
    with connection.cursor() as cursor:
        cursor.execute(sql, [customer_id])
        return bool(cursor.fetchone()[0])


def _count_active_jobs(customer_id: int) -> int:
    """Pending and processing jobs of the customer (expects ``_lock_customer`` held).

    A statement of its own, after the lock, on purpose: on PostgreSQL a subquery in the locking
    statement would use the snapshot from before the lock wait and miss the job the previous
    holder just committed.
    """
    with connection.cursor() as cursor:
        cursor.execute(_COUNT_ACTIVE_SQL, [customer_id, *JobStatus.active()])
        return cursor.fetchone()[0]


def submit_job(
    *, customer: Customer, kind: str, prompt: str, input_image: bytes | None = None,
    aspect_ratio: str = "", duration: int | None = None, mode: str | None = None, options: dict | None = None,
    retry_of: Job | None = None, quoted_price: int | None = None,
) -> Job:
    """Create the job, reserve its price and queue it; all or nothing.

    ``options`` may carry ``aspect_ratio``, ``duration`` and ``mode`` instead of the keywords.
    With ``quoted_price`` (what the customer was shown and confirmed) the job is created only
    at exactly that price, else ``PriceChanged``: the price checked is the one reserved.
    Raises ``InvalidJobInput`` (bad request), ``TooManyActiveJobs`` (the cap),
    ``billing.exceptions.InsufficientFunds`` (balance short) or ``CustomerBlocked``; each
    message is fit for the customer. The queue message is sent after commit.
    """
    options = options or {}
    unknown = set(options) - {"aspect_ratio", "duration", "mode"}
    if unknown:
        raise TypeError(f"unknown job options: {sorted(unknown)}")
    checked = check_job_input(
        kind=kind, prompt=prompt, input_image=input_image,
        aspect_ratio=aspect_ratio or options.get("aspect_ratio", ""),
        duration=duration or options.get("duration"), mode=mode or options.get("mode"),
    )
    provider, price = quote_job(
        kind=kind, mode=checked.options.get("mode", ""), duration=checked.options.get("duration", 0)
    )
    if quoted_price is not None and price != quoted_price:
        raise PriceChanged()
    stored_input = ""
    if checked.image is not None:
        # Written before the transaction (no file I/O under the lock); removed if it rolls back.
        extension = checked.mime.split("/")[1]
        stored_input = default_storage.save(f"jobs/input/{timezone.now():%Y/%m/%d}/upload.{extension}",
                                            ContentFile(checked.image))
    try:
        with transaction.atomic(durable=True):
            if _lock_customer(customer.pk):
                raise CustomerBlocked()
            limit = settings.MAX_ACTIVE_JOBS_PER_CUSTOMER
            if _count_active_jobs(customer.pk) >= limit:
                raise TooManyActiveJobs(limit=limit)
            job = Job.objects.create(
                customer_id=customer.pk, kind=kind, provider=provider, prompt=checked.prompt,
                input_file=stored_input, input_mime=checked.mime, options=checked.options,
                cost_estimate=price, retry_of=retry_of,
            )
            if price:
                job.reservation = billing.reserve_balance(
                    customer=customer, amount=price, idempotency_key=f"job:{job.pk}",
                    description=f"job #{job.pk} {kind}",
                )
                Job.objects.filter(pk=job.pk).update(reservation=job.reservation)
            transaction.on_commit(lambda: queueing.enqueue_job(job.pk, kind), robust=True)
    except BaseException:
        if stored_input:
            default_storage.delete(stored_input)
        raise
    return job


def cancel_job(*, job: Job) -> Job:
    """Cancel a pending or processing job and release its reservation at once.

    A worker running it notices at its next heartbeat and stops without charging. Raises
    ``JobNotCancellable`` when the job has already finished.
    """
    with transaction.atomic(durable=True):
        moved = Job.objects.filter(pk=job.pk, status__in=JobStatus.active()).update(
            status=JobStatus.CANCELLED, completed_at=timezone.now(), error_code="cancelled",
        )
        if not moved:
            raise JobNotCancellable()
        job = Job.objects.select_related("reservation").get(pk=job.pk)
        if job.reservation is not None:
            billing.refund_balance(reservation=job.reservation)
        announce_finished(job)
        # Its provider slot (a running Kling task goes on at Kling, paid, but genbot stops
        # waiting for it) and its place in line.
        transaction.on_commit(lambda: quota.release(job.provider, job.pk), robust=True)
    return job


def retry_job(*, job: Job) -> Job:
    """Submit a failed job again as a new job: a new reservation at today's price.

    The old job stays failed (it was refunded); the new one points at it through ``retry_of``.
    Raises ``JobNotRetryable`` for a job that did not fail, and whatever ``submit_job`` raises
    (the cap, the balance, an input picture already cleaned up).
    """
    if job.status != JobStatus.FAILED:
        raise JobNotRetryable()
    input_image = None
    if job.input_file:
        try:
            with default_storage.open(job.input_file.name, "rb") as handle:
                input_image = handle.read()
        except FileNotFoundError:
            raise InvalidJobInput(_("The original picture was already deleted; ask the customer to send it again.")) from None
    return submit_job(
        customer=job.customer, kind=job.kind, prompt=job.prompt, input_image=input_image, options=job.options,
        retry_of=job,
    )
