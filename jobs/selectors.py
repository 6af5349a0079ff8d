"""Reads about jobs and prices that more than one place needs."""
from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.db.models import QuerySet

# VIDEO_MODES only for the bot's handlers, which read both here still; the catalogue owns them.
from .catalog import VIDEO_DURATIONS, VIDEO_MODES  # noqa: F401
from .models import Job, JobKind, JobStatus, Price


def default_price(*, kind: str, mode: str = "", duration: int = 0) -> int:
    """The price from settings when staff set none, in kopecks."""
    if kind == JobKind.IMAGE:
        return settings.PRICE_IMAGE
    if kind == JobKind.IMAGE_EDIT:
        return settings.PRICE_IMAGE_EDIT
    per_second = settings.PRICE_VIDEO_PRO_PER_SECOND if mode == "pro" else settings.PRICE_VIDEO_STD_PER_SECOND
    return per_second * (duration or VIDEO_DURATIONS[0])


# The most specific matching price first: an exact provider, then an exact mode, then an exact
# duration, each beating "any". One indexed statement per quote (a quote precedes every submit,
# so it is written as SQL rather than paying the ORM's compile step each time).
_PRICE_SQL = f"""
SELECT amount FROM {Price._meta.db_table}
WHERE kind = %s AND provider IN (%s, '') AND mode IN (%s, '') AND duration IN (%s, 0)
ORDER BY provider <> '' DESC, mode <> '' DESC, duration <> 0 DESC
LIMIT 1
"""


def estimate_price(*, kind: str, provider: str, mode: str = "", duration: int = 0) -> int:
    """What a job will cost, in kopecks: shown before the customer confirms, reserved at submit.

    The most specific staff price wins (an exact provider, mode and duration each beat "any");
    without one, the settings' default.
    """
    with connection.cursor() as cursor:
        cursor.execute(_PRICE_SQL, [kind, provider, mode, duration])
        row = cursor.fetchone()
    return row[0] if row is not None else default_price(kind=kind, mode=mode, duration=duration)


def active_jobs(customer) -> QuerySet[Job]:
    return Job.objects.filter(customer_id=customer.pk, status__in=JobStatus.active())


def recent_jobs(customer, limit: int = 10) -> QuerySet[Job]:
    return Job.objects.filter(customer_id=customer.pk).order_by("-id")[:limit]
