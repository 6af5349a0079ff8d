"""Figures for the admin home: today, and the last 30 days. Reads only.

Each figure is one aggregate query (no per-row loops), so the page costs the same number of
statements however many customers, jobs and payments there are.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db.models import Count, Exists, F, IntegerField, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone
from django.utils.translation import gettext_lazy as _, pgettext

from billing.models import Customer, SystemAccount, Transfer, TransferKind
from jobs.models import Job, JobStatus
from payments.models import Payment, PaymentStatus, Provider
from promotions.models import BonusTakeback, PromoRedemption, Referral


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
    offer_key: str  # "" for jobs from before the catalogue (by_provider: the AI provider's name)
    jobs: int
    revenue: int  # kopecks charged
    provider_cost: int  # kopecks the providers charge for them, by the offers' cost rules

    @property
    def margin(self) -> int:
        return self.revenue - self.provider_cost


def model_figures(days: int = 30, *, by: str = "offer_key") -> list[ModelFigures]:
    """Completed jobs of the last ``days`` days per offer (``by="provider"``: per AI provider,
    Gemini, Kling): what customers paid, what the providers cost (as priced at submit), most
    revenue first."""
    rows = (
        Job.objects.filter(status=JobStatus.COMPLETED, completed_at__gte=_window_start(days))
        .values(by).annotate(n=Count("id"), revenue=Sum("cost_actual"), cost=Sum("provider_cost"))
        .order_by("-revenue", by)
    )
    return [ModelFigures(row[by], row["n"], row["revenue"] or 0, row["cost"] or 0) for row in rows]


def _window_start(days: int) -> datetime:
    return _day_start(timezone.localdate() - timedelta(days=days - 1))


# --- growth: the funnel, top-ups by payment provider, referrals and promo codes ----------------


@dataclass
class FunnelStep:
    label: str  # a lazy translation
    customers: int
    of_previous: int | None  # percent of the step before (None for the first)
    of_started: int | None


def funnel(days: int = 30) -> list[FunnelStep]:
    """Customers who started in the last ``days`` days, and how far they went: each step is a
    part of the one before (topped up: a succeeded payment; ordered: of those, a job; ordered
    again: two or more jobs). One query."""
    paid = Payment.objects.filter(customer=OuterRef("pk"), succeeded_at__isnull=False)
    jobs = (
        Job.objects.filter(customer=OuterRef("pk")).order_by().values("customer")
        .annotate(n=Count("id")).values("n")
    )
    cohort = Customer.objects.filter(created_at__gte=_window_start(days)).annotate(
        paid=Exists(paid), job_count=Coalesce(Subquery(jobs, output_field=IntegerField()), Value(0)),
    )
    counts = cohort.aggregate(
        started=Count("pk"), topped_up=Count("pk", filter=Q(paid=True)),
        ordered=Count("pk", filter=Q(paid=True, job_count__gte=1)),
        again=Count("pk", filter=Q(paid=True, job_count__gte=2)),
    )
    labels = {"started": pgettext("funnel", "started"), "topped_up": _("topped up"), "ordered": _("ordered"),
              "again": _("ordered again")}
    steps: list[FunnelStep] = []
    for name, label in labels.items():
        n = counts[name]
        first = not steps
        steps.append(FunnelStep(
            label, n, None if first else _percent(n, steps[-1].customers),
            None if first else _percent(n, counts["started"]),
        ))
    return steps


def _percent(part: int, whole: int) -> int:
    return round(100 * part / whole) if whole else 0


@dataclass
class TopupFigures:
    provider: str
    label: str
    payments: int = 0
    paid: int = 0  # kopecks
    refunded: int = 0  # kopecks of those payments refunded since

    @property
    def net(self) -> int:
        return self.paid - self.refunded


def topups_by_provider(days: int = 30) -> list[TopupFigures]:
    """Top-ups that succeeded in the last ``days`` days per payment provider, net of what was
    refunded of them; every provider is listed, paid or not. One query."""
    figures = {p.value: TopupFigures(p.value, p.label) for p in Provider}
    rows = (
        Payment.objects.filter(succeeded_at__gte=_window_start(days)).values("provider")
        .annotate(n=Count("id"), paid=Sum("amount"), refunded=Sum("refunded_amount")).order_by()
    )
    for row in rows:
        figures.setdefault(row["provider"], TopupFigures(row["provider"], row["provider"]))
        figure = figures[row["provider"]]
        figure.payments, figure.paid, figure.refunded = row["n"], row["paid"] or 0, row["refunded"] or 0
    return list(figures.values())


REFERRAL_SOURCES = ("referral_signup", "referral_percent")


@dataclass
class GrowthFigures:
    referrals: int = 0  # referees who joined through a link
    referees_paid: int = 0  # of them, with a succeeded payment
    referral_bonus: int = 0  # kopecks credited to referrers
    bonus_by_source: dict[str, int] = field(default_factory=dict)  # kopecks from the bonus account
    taken_back: int = 0  # kopecks of bonuses taken back when their payment was refunded
    written_off: int = 0  # kopecks that could not be taken back (the wallet lacked them)
    redemptions: list[dict] = field(default_factory=list)  # {"code", "n", "amount"} per promo code

    @property
    def bonus_credited(self) -> int:
        return sum(self.bonus_by_source.values())


def growth_figures(days: int = 30, *, codes: int = 20) -> GrowthFigures:
    """Referral and promo figures of the last ``days`` days. Four queries.

    Bonus money is read off the ledger (every credit from the ``bonus`` account, by its source:
    welcome, promo, package, promo_percent, referral_signup, referral_percent), so the figure is
    what wallets received, whichever service credited it.
    """
    start = _window_start(days)
    referee_paid = Payment.objects.filter(customer=OuterRef("referee"), succeeded_at__isnull=False)
    referrals = Referral.objects.filter(created_at__gte=start).aggregate(
        n=Count("pk"), paid=Count("pk", filter=Exists(referee_paid)),
    )
    by_source = {
        row["source"]: row["total"] or 0
        for row in Transfer.objects.filter(
            kind=TransferKind.SINGLE, debit_account__code=SystemAccount.BONUS, created_at__gte=start
        ).values("source").annotate(total=Sum("amount")).order_by("source")
    }
    takebacks = BonusTakeback.objects.filter(created_at__gte=start).aggregate(
        taken=Sum("taken"), written_off=Sum("written_off")
    )
    redemptions = list(
        PromoRedemption.objects.filter(created_at__gte=start).values(code=F("promo_code__code"))
        .annotate(n=Count("id"), amount=Sum("amount")).order_by("-n", "code")[:codes]
    )
    return GrowthFigures(
        referrals=referrals["n"], referees_paid=referrals["paid"],
        referral_bonus=sum(by_source.get(source, 0) for source in REFERRAL_SOURCES),
        bonus_by_source=by_source, taken_back=takebacks["taken"] or 0, written_off=takebacks["written_off"] or 0,
        redemptions=redemptions,
    )


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
