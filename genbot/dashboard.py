"""Figures for the admin home: today, and the last 30 days. Reads only."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from billing.models import Transfer, TransferKind
from jobs.models import Job, JobStatus
from payments.models import Payment, PaymentStatus


@dataclass
class DayFigures:
    day: date
    topups: int = 0  # kopecks credited by succeeded payments
    spend: int = 0  # kopecks charged for jobs
    failures: int = 0  # jobs that failed


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def today_figures() -> dict:
    start = _day_start(timezone.localdate())
    paid = Payment.objects.filter(succeeded_at__gte=start).aggregate(n=Count("id"), total=Sum("amount"))
    revenue = Transfer.objects.filter(kind=TransferKind.POST, created_at__gte=start).aggregate(total=Sum("amount"))
    return {
        "topups_count": paid["n"] or 0,
        "topups": paid["total"] or 0,
        "revenue": revenue["total"] or 0,
        "active_jobs": Job.objects.filter(status__in=JobStatus.active()).count(),
        "failed_jobs": Job.objects.filter(status=JobStatus.FAILED, completed_at__gte=start).count(),
        "queues": _queue_lengths(),
    }


def _queue_lengths() -> dict[str, int] | None:
    from .health import check_redis_and_queues

    try:
        return check_redis_and_queues()
    except Exception:  # noqa: BLE001 - the page still renders; it says the queues are unreachable
        return None


def last_days(days: int = 30) -> list[DayFigures]:
    today = timezone.localdate()
    first = today - timedelta(days=days - 1)
    start = _day_start(first)
    by_day = {first + timedelta(days=i): DayFigures(first + timedelta(days=i)) for i in range(days)}
    for row in (
        Payment.objects.filter(succeeded_at__gte=start, status__in=[
            PaymentStatus.SUCCEEDED, PaymentStatus.REFUNDED, PaymentStatus.PARTIALLY_REFUNDED])
        .annotate(day=TruncDate("succeeded_at")).values("day").annotate(total=Sum("amount")).order_by()
    ):
        if row["day"] in by_day:
            by_day[row["day"]].topups = row["total"] or 0
    for row in (
        Transfer.objects.filter(kind=TransferKind.POST, created_at__gte=start)
        .annotate(day=TruncDate("created_at")).values("day").annotate(total=Sum("amount")).order_by()
    ):
        if row["day"] in by_day:
            by_day[row["day"]].spend = row["total"] or 0
    for row in (
        Job.objects.filter(status=JobStatus.FAILED, completed_at__gte=start)
        .annotate(day=TruncDate("completed_at")).values("day").annotate(n=Count("id")).order_by()
    ):
        if row["day"] in by_day:
            by_day[row["day"]].failures = row["n"]
    return list(by_day.values())


@dataclass
class ModelFigures:
    offer_key: str  # "" for jobs from before the catalogue
    jobs: int
    revenue: int  # kopecks charged
    provider_cost: int  # kopecks the providers charge for them, by the offers' cost rules

    @property
    def margin(self) -> int:
        return self.revenue - self.provider_cost


def model_figures(days: int = 30) -> list[ModelFigures]:
    """Completed jobs of the last ``days`` days per offer: what customers paid, what the
    providers cost (as priced at submit), most revenue first."""
    start = _day_start(timezone.localdate() - timedelta(days=days - 1))
    rows = (
        Job.objects.filter(status=JobStatus.COMPLETED, completed_at__gte=start)
        .values("offer_key").annotate(n=Count("id"), revenue=Sum("cost_actual"), cost=Sum("provider_cost"))
        .order_by("-revenue", "offer_key")
    )
    return [ModelFigures(row["offer_key"], row["n"], row["revenue"] or 0, row["cost"] or 0) for row in rows]


def chart_series(days: list[DayFigures], *, width: int = 600, height: int = 120) -> dict:
    """SVG polyline points for top-ups, spend (same money scale) and failures (own scale)."""
    step = width / max(len(days) - 1, 1)
    money_top = max([d.topups for d in days] + [d.spend for d in days] + [1])
    fail_top = max([d.failures for d in days] + [1])

    def points(values, top):
        return " ".join(f"{i * step:.1f},{height - v * height / top:.1f}" for i, v in enumerate(values))

    return {
        "width": width,
        "height": height,
        "topups": points([d.topups for d in days], money_top),
        "spend": points([d.spend for d in days], money_top),
        "failures": points([d.failures for d in days], fail_top),
        "money_top": money_top,
        "fail_top": fail_top,
    }
