"""Who a broadcast reaches: customers chosen by language, payments, activity and how they came."""
from __future__ import annotations

from datetime import timedelta

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from billing.models import Customer
from payments.models import Payment, PaymentStatus

from .models import PromoRedemption, Referral

# A payment that once brought money in, refunded since or not.
PAID_STATUSES = (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED)
JOINED_VIA = ("referral", "promo", "either")


def broadcast_audience(
    *,
    language: str | None = None,
    paid_at_least_once: bool = False,
    active_days: int | None = None,
    joined_via: str | None = None,
    include_blocked: bool = False,
) -> QuerySet[Customer]:
    """Customers a broadcast reaches, in id order; never those blocked by staff.

    ``language``: "ru" | "en" (None or "": any). ``active_days``: their customer row changed in
    the last N days (``Customer.updated_at``: created, a profile change, writing again after
    blocking the bot), what "active" has always meant here: the bot keeps no last-seen time.
    ``joined_via``: "referral" (started through someone's link), "promo" (redeemed a promo
    code), "either"; None or "": any. Customers known to have blocked the bot (Telegram
    answered 403) are left out unless ``include_blocked``.
    """
    customers = Customer.objects.filter(is_blocked=False)
    if not include_blocked:
        customers = customers.filter(bot_blocked_at__isnull=True)
    if language:
        customers = customers.filter(language=language)
    if paid_at_least_once:
        customers = customers.filter(
            Exists(Payment.objects.filter(customer=OuterRef("pk"), status__in=PAID_STATUSES))
        )
    if active_days:
        customers = customers.filter(updated_at__gte=timezone.now() - timedelta(days=active_days))
    if joined_via:
        if joined_via not in JOINED_VIA:
            raise ValueError(f"joined_via must be one of {JOINED_VIA}, not {joined_via!r}")
        referred = Q(Exists(Referral.objects.filter(referee=OuterRef("pk"))))
        redeemed = Q(Exists(PromoRedemption.objects.filter(customer=OuterRef("pk"))))
        customers = customers.filter({"referral": referred, "promo": redeemed, "either": referred | redeemed}[joined_via])
    return customers.order_by("pk")
