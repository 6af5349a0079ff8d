"""Reads of promotions that the bot, the admin and the services share."""
from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import F, OuterRef, Subquery, Sum
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from billing.models import Customer, Transfer, TransferKind
from payments.models import Payment

from .models import BonusKind, PaymentBonus, PromoRedemption, Referral, TopUpPackage

# A customer is "new" (a welcome bonus, a referral) only this soon after their first message.
NEW_CUSTOMER_WINDOW = timedelta(hours=1)
# The Payment.metadata key of a top-up's package bonus percent (``services.start_topup`` writes it).
BONUS_PERCENT = "bonus_percent"
REFERRAL_KINDS = (BonusKind.REFERRAL_SIGNUP, BonusKind.REFERRAL_PERCENT)

_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
# The signature's length in base-36 digits (31 bits): guessing another customer's code takes
# about a billion tries, so codes cannot be walked by counting ids.
_SIGNATURE_DIGITS = 6


def _base36(number: int, width: int = 1) -> str:
    digits = ""
    while number:
        number, digit = divmod(number, 36)
        digits = _DIGITS[digit] + digits
    return digits.rjust(width, "0")


def _signature(customer_id: int) -> str:
    digest = salted_hmac("promotions.referral-code", str(customer_id), algorithm="sha256").hexdigest()
    return _base36(int(digest, 16) % 36**_SIGNATURE_DIGITS, _SIGNATURE_DIGITS)


def referral_code(customer: Customer) -> str:
    """The customer's code in their link (``start=r_<code>``): base-36 id + its SECRET_KEY signature.

    Deterministic, [0-9a-z], at most 19 characters (a bigint id is 13 base-36 digits).
    """
    return _base36(customer.pk) + _signature(customer.pk)


def customer_by_referral_code(code: str) -> Customer | None:
    """The customer a referral code names, if its signature is ours (matched case-insensitively)."""
    code = (code or "").strip().lower()
    if not (_SIGNATURE_DIGITS < len(code) <= 13 + _SIGNATURE_DIGITS) or any(c not in _DIGITS for c in code):
        return None
    customer_id = int(code[:-_SIGNATURE_DIGITS], 36)
    if not constant_time_compare(code[-_SIGNATURE_DIGITS:], _signature(customer_id)):
        return None
    return Customer.objects.filter(pk=customer_id).first()


@dataclass(frozen=True)
class ReferralSummary:
    joined: int  # customers who started through the link
    paid: int  # of them, those who topped up at least once
    earned: int  # kopecks the referrals brought, less what refunds took back or wrote off


def referral_summary(customer: Customer) -> ReferralSummary:
    referees = Referral.objects.filter(referrer=customer).values("referee_id")
    paid = Payment.objects.filter(customer_id__in=referees, succeeded_at__isnull=False).values("customer_id").distinct()
    earned = PaymentBonus.objects.filter(beneficiary=customer, kind__in=REFERRAL_KINDS).aggregate(
        total=Sum(F("amount") - F("taken_back") - F("written_off"))
    )["total"]
    return ReferralSummary(joined=referees.count(), paid=paid.count(), earned=earned or 0)


def has_paid(customer: Customer) -> bool:
    """Whether a top-up of the customer ever succeeded (refunded ones count: they paid)."""
    return Payment.objects.filter(customer=customer, succeeded_at__isnull=False).exists()


def is_new_customer(customer: Customer) -> bool:
    """Created within the last hour, never paid, never spent (no reservation ever)."""
    if customer.created_at < timezone.now() - NEW_CUSTOMER_WINDOW:
        return False
    if has_paid(customer):
        return False
    return not Transfer.objects.filter(customer=customer, kind=TransferKind.PENDING).exists()


def active_packages() -> list[TopUpPackage]:
    return list(TopUpPackage.objects.filter(is_active=True).order_by("position", "amount"))


def package_bonus_percent(amount: int) -> int:
    """The bonus of the largest active package whose amount <= ``amount``; 0 if none."""
    percent = (
        TopUpPackage.objects.filter(is_active=True, amount__lte=amount).order_by("-amount")
        .values_list("bonus_percent", flat=True).first()
    )
    return percent or 0


def pending_promo_redemption(customer: Customer) -> PromoRedemption | None:
    """The oldest redeemed percent code still waiting for a top-up (one applies per top-up)."""
    return (
        PromoRedemption.objects.filter(customer=customer, percent__gt=0, applied_payment__isnull=True)
        .order_by("id").first()
    )


def pending_promo_percent(customer: Customer) -> int:
    """The percent the customer's next successful top-up gets from a promo code, else 0."""
    redemption = pending_promo_redemption(customer)
    return redemption.percent if redemption else 0


def payment_bonuses(payment: Payment) -> list[PaymentBonus]:
    return list(PaymentBonus.objects.filter(payment=payment).select_related("beneficiary").order_by("id"))


@dataclass(frozen=True)
class BonusFacts:
    """What decides a succeeded payment's bonuses, read in one statement (it runs for every payment)."""

    bonus_percent: int  # the package's, fixed when the top-up started
    redemption_id: int | None  # the oldest percent code waiting for a top-up
    redemption_percent: int
    referral_id: int | None
    referrer_id: int | None
    referral_created_at: datetime | None


def bonus_facts(payment: Payment) -> BonusFacts:
    waiting = PromoRedemption.objects.filter(
        customer_id=OuterRef("customer_id"), percent__gt=0, applied_payment__isnull=True
    ).order_by("id")
    referral = Referral.objects.filter(referee_id=OuterRef("customer_id"))
    row = Payment.objects.filter(pk=payment.pk).annotate(
        redemption_id=Subquery(waiting.values("id")[:1]), redemption_percent=Subquery(waiting.values("percent")[:1]),
        referral_id=Subquery(referral.values("id")[:1]), referrer_id=Subquery(referral.values("referrer_id")[:1]),
        referral_created_at=Subquery(referral.values("created_at")[:1]),
    ).values("metadata", "redemption_id", "redemption_percent", "referral_id", "referrer_id", "referral_created_at").get()
    return BonusFacts(
        bonus_percent=int((row.pop("metadata") or {}).get(BONUS_PERCENT) or 0),
        **{**row, "redemption_percent": row["redemption_percent"] or 0},
    )


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` plus calendar months (31 January + 1 month = 28/29 February)."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))
