"""Reads about jobs and prices that more than one place needs."""
from __future__ import annotations

from django.conf import settings
from django.db.models import Q, QuerySet

from .models import Job, JobKind, JobStatus, Price

VIDEO_DURATIONS = (5, 10)
VIDEO_MODES = ("std", "pro")


def default_price(*, kind: str, mode: str = "", duration: int = 0) -> int:
    """The price from settings when staff set none, in kopecks."""
    if kind == JobKind.IMAGE:
        return settings.PRICE_IMAGE
    if kind == JobKind.IMAGE_EDIT:
        return settings.PRICE_IMAGE_EDIT
    per_second = settings.PRICE_VIDEO_PRO_PER_SECOND if mode == "pro" else settings.PRICE_VIDEO_STD_PER_SECOND
    return per_second * (duration or VIDEO_DURATIONS[0])


def estimate_price(*, kind: str, provider: str, mode: str = "", duration: int = 0) -> int:
    """What a job will cost, in kopecks: shown before the customer confirms, reserved at submit.

    The most specific staff price wins (an exact provider, mode and duration each beat "any");
    without one, the settings' default.
    """
    candidates = Price.objects.filter(
        Q(kind=kind),
        Q(provider=provider) | Q(provider=""),
        Q(mode=mode) | Q(mode=""),
        Q(duration=duration) | Q(duration=0),
    ).values_list("provider", "mode", "duration", "amount")
    best = max(
        candidates,
        key=lambda row: (row[0] != "", row[1] != "", row[2] != 0),
        default=None,
    )
    return best[3] if best is not None else default_price(kind=kind, mode=mode, duration=duration)


def active_jobs(customer) -> QuerySet[Job]:
    return Job.objects.filter(customer_id=customer.pk, status__in=JobStatus.active())


def recent_jobs(customer, limit: int = 10) -> QuerySet[Job]:
    return Job.objects.filter(customer_id=customer.pk).order_by("-id")[:limit]
