"""Asking for a job: check the request against its offer, quote it, submit it (reserving its price), cancel, retry."""
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
    OptionNotOffered,
    TooManyInputImages,
    JobNotRetryable,
    MediaRequired,
    MediaTooLarge,
    PriceChanged,
    PromptTooLong,
    TooManyActiveJobs,
    UnsupportedMedia,
)
from ..models import Job, JobKind, JobStatus
from ..providers.fake import FakeProvider
from ..providers.registry import provider_name_for
from ..selectors import offer_for, quote_order
from .workflow import announce_finished, read_stored


# --- validation -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckedInput:
    prompt: str
    options: dict
    # Every input picture as (bytes, MIME type), in order, and a video's last frame.
    images: tuple[tuple[bytes, str], ...] = ()
    end_image: tuple[bytes, str] | None = None

    @property
    def image(self) -> bytes | None:
        return self.images[0][0] if self.images else None

    @property
    def mime(self) -> str:
        return self.images[0][1] if self.images else ""


def _legacy_options(options: dict | None, *, aspect_ratio: str = "", duration: int | None = None,
                    mode: str | None = None) -> dict:
    """``options`` with the old keywords (``aspect_ratio``, ``duration``, ``mode``) folded in."""
    merged = dict(options or {})
    for name, value in (("aspect_ratio", aspect_ratio), ("duration", duration), ("mode", mode)):
        if value:
            merged[name] = value
    return merged


def _images(input_images, input_image: bytes | None) -> tuple[bytes, ...]:
    """The input pictures as bytes (each may come as bytes or as (bytes, mime))."""
    images = tuple(item[0] if isinstance(item, tuple) else item for item in input_images or ())
    return images or ((input_image,) if input_image else ())


def check_job_input(
    *, kind: str, prompt: str, input_image: bytes | None = None, aspect_ratio: str = "",
    duration: int | None = None, mode: str | None = None, offer: catalog.OfferView | None = None,
    options: dict | None = None, input_images=(), end_image: bytes | None = None,
) -> CheckedInput:
    """Validate a request before any money moves; raises ``InvalidJobInput`` subclasses.

    What each kind takes and the limits on it are the catalogue's (``jobs.catalog``); which
    options and how many pictures, the offer's (the kind's default offer when none is given).
    """
    spec = catalog.kind_spec(kind)
    offer = offer or offer_for(kind=kind)
    limits = catalog.input_limits(kind)
    prompt = (prompt or "").strip()
    if not prompt:
        raise EmptyPrompt()
    if len(prompt) > limits.prompt_chars:
        raise PromptTooLong(limit=limits.prompt_chars)
    checked_options = catalog.offer_options(
        offer, kind=kind, options=_legacy_options(options, aspect_ratio=aspect_ratio, duration=duration, mode=mode),
    )
    images = _images(input_images, input_image)
    if spec.input_image:
        if not images:
            raise MediaRequired()
        if len(images) > offer.max_inputs(kind):
            raise TooManyInputImages(model=offer.title, limit=offer.max_inputs(kind))
    elif images:
        raise InvalidJobOption()
    end = None
    if end_image:
        if kind != JobKind.VIDEO_IMAGE or not offer.end_frame:
            raise OptionNotOffered(model=offer.title, option="end_frame")
        end = (end_image, _check_image(end_image, limits=limits))
    return CheckedInput(
        prompt=prompt, options=checked_options, images=tuple((image, _check_image(image, limits=limits)) for image in images),
        end_image=end,
    )


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


def provider_for(offer: catalog.OfferView, kind: str) -> str:
    """Who makes an order of this offer: its provider, or the fake where that has no key
    (``AI_PROVIDER`` and the keys decide, as ``providers.registry`` says)."""
    if offer.provider == FakeProvider.name or provider_name_for(kind) == FakeProvider.name:
        return FakeProvider.name
    return offer.provider


def quote_job(*, kind: str, mode: str = "", duration: int = 0, model: str = "", options: dict | None = None) -> tuple[str, int]:
    """(provider, price in kopecks) a job of this kind would get now: shown before confirming.

    The old form of ``selectors.quote`` (``mode``/``duration`` as keywords), kept for callers
    that still use it.
    """
    quoted = quote_order(kind=kind, model=model, options=_legacy_options(options, duration=duration, mode=mode))
    return provider_for(quoted.offer, kind), quoted.price


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
    *, customer: Customer, kind: str, prompt: str, model: str = "", options: dict | None = None,
    input_images=(), end_image: bytes | None = None, input_image: bytes | None = None, aspect_ratio: str = "",
    duration: int | None = None, mode: str | None = None, retry_of: Job | None = None,
    quoted_price: int | None = None,
) -> Job:
    """Create the job, reserve its price and queue it; all or nothing.

    ``model`` is a catalogue offer's key ("" = the kind's default; a disabled offer's orders go
    to its successor), ``options`` what ``catalog.OPTION_NAMES`` lists (the old keywords
    ``aspect_ratio``, ``duration`` and ``mode`` still work), ``input_images`` the pictures
    (``input_image``: one, the old way), ``end_image`` a video's last frame. The job records
    the offer and model id it was priced for; the price is ``selectors.quote``'s for the same
    order. With ``quoted_price`` (what the customer was shown and confirmed) the job is created
    only at exactly that price, else ``PriceChanged``: the price checked is the one reserved.
    Raises ``InvalidJobInput`` (bad request, an option the offer does not take),
    ``TooManyActiveJobs`` (the cap), ``billing.exceptions.InsufficientFunds`` (balance short)
    or ``CustomerBlocked``; each message is fit for the customer. The queue message is sent
    after commit.
    """
    options = _legacy_options(options, aspect_ratio=aspect_ratio, duration=duration, mode=mode)
    offer = offer_for(kind=kind, model=model)
    checked = check_job_input(
        kind=kind, prompt=prompt, offer=offer, options=options, input_images=_images(input_images, input_image),
        end_image=end_image,
    )
    price, cost = catalog.price_of(offer, kind=kind, options=checked.options)
    if quoted_price is not None and price != quoted_price:
        raise PriceChanged()
    provider = provider_for(offer, kind)
    # Written before the transaction (no file I/O under the lock); removed if it rolls back.
    stored_inputs: list[str] = []
    stored_end = ""
    try:
        stored_inputs = [_store_input(image, mime) for image, mime in checked.images]
        if checked.end_image is not None:
            stored_end = _store_input(*checked.end_image)
        with transaction.atomic(durable=True):
            if _lock_customer(customer.pk):
                raise CustomerBlocked()
            limit = settings.MAX_ACTIVE_JOBS_PER_CUSTOMER
            if _count_active_jobs(customer.pk) >= limit:
                raise TooManyActiveJobs(limit=limit)
            job = Job.objects.create(
                customer_id=customer.pk, kind=kind, provider=provider, offer_key=offer.key, model_id=offer.model_id,
                prompt=checked.prompt, input_file=stored_inputs[0] if stored_inputs else "", input_mime=checked.mime,
                input_files=stored_inputs, end_file=stored_end,
                end_mime=checked.end_image[1] if checked.end_image else "", options=checked.options,
                cost_estimate=price, provider_cost=cost, retry_of=retry_of,
            )
            if price:
                job.reservation = billing.reserve_balance(
                    customer=customer, amount=price, idempotency_key=f"job:{job.pk}",
                    description=f"job #{job.pk} {kind}",
                )
                Job.objects.filter(pk=job.pk).update(reservation=job.reservation)
            transaction.on_commit(lambda: queueing.enqueue_job(job.pk, kind), robust=True)
    except BaseException:
        for name in [*stored_inputs, *([stored_end] if stored_end else [])]:
            default_storage.delete(name)
        raise
    return job


def _store_input(image: bytes, mime: str) -> str:
    extension = mime.split("/")[1]
    return default_storage.save(f"jobs/input/{timezone.now():%Y/%m/%d}/upload.{extension}", ContentFile(image))


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

    The same offer and options (a disabled offer's successor takes it), the same pictures.

    The old job stays failed (it was refunded); the new one points at it through ``retry_of``.
    Raises ``JobNotRetryable`` for a job that did not fail, and whatever ``submit_job`` raises
    (the cap, the balance, an input picture already cleaned up).
    """
    if job.status != JobStatus.FAILED:
        raise JobNotRetryable()
    names = job.input_files or ([job.input_file.name] if job.input_file else [])
    try:
        images = [read_stored(name) for name in names]
        end_image = read_stored(job.end_file.name) if job.end_file else None
    except FileNotFoundError:
        raise InvalidJobInput(_("The original picture was already deleted; ask the customer to send it again.")) from None
    return submit_job(
        customer=job.customer, kind=job.kind, prompt=job.prompt, model=job.offer_key, options=job.options,
        input_images=images, end_image=end_image, retry_of=job,
    )
