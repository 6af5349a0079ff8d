"""Promo codes: staff create them; a customer redeems each once, while it is valid and not used up.

One durable transaction per redemption: the code's ``redemptions_count`` grows by a conditional
UPDATE (``WHERE redemptions_count < max_redemptions``, the CHECK behind it), the redemption row
is UNIQUE per (code, customer), and an amount code's credit is written with them. Whatever
fails rolls all three back, so 200 customers racing for a 50-use code make exactly 50 credits.
"""
from __future__ import annotations

import logging
import re
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing.models import Customer
from billing.money import check_kopecks

from .. import selectors
from ..exceptions import (
    InvalidPromoCode,
    PromoCodeAlreadyRedeemed,
    PromoCodeExpired,
    PromoCodeNotForCustomer,
    PromoCodeNotValid,
    PromoCodeUnknown,
    PromoCodeUsedUp,
)
from ..models import PromoCode, PromoRedemption
from . import attempts
from .ledger import announce_credit, credit_bonus

logger = logging.getLogger("promotions")

PROMO = "promo"
CODE_PATTERN = re.compile(r"[A-Z0-9_-]{3,32}")


def normalise_code(code: str) -> str:
    """How codes are stored and matched: surrounding spaces dropped, upper-case."""
    return (code or "").strip().upper()


def create_promo_code(
    *, code: str, amount: int = 0, percent: int = 0, max_redemptions: int, valid_from: datetime | None = None,
    valid_until: datetime | None = None, new_customers_only: bool = False, created_by=None,
) -> PromoCode:
    """A new code: ``amount`` kopecks credited when redeemed, or ``percent`` on the next top-up.

    Raises ``InvalidPromoCode`` (its message says what to fix) for a malformed or taken code, both
    or neither of amount and percent, a percent above 100, no redemptions, an empty window.
    """
    code = normalise_code(code)
    if not CODE_PATTERN.fullmatch(code):
        raise InvalidPromoCode(_("A code is 3-32 letters A-Z, digits, - and _."))
    if (amount > 0) == (percent > 0) or amount < 0 or percent < 0:
        raise InvalidPromoCode(_("Give either an amount or a percent, not both."))
    if amount:
        check_kopecks(amount)
    if percent > 100:
        raise InvalidPromoCode(_("A percent is at most 100."))
    if isinstance(max_redemptions, bool) or not isinstance(max_redemptions, int) or max_redemptions <= 0:
        raise InvalidPromoCode(_("A code must allow at least one redemption."))
    if valid_from and valid_until and valid_from >= valid_until:
        raise InvalidPromoCode(_("The code must become valid before it expires."))
    try:
        with transaction.atomic(durable=True):
            promo = PromoCode.objects.create(
                code=code, amount=amount, percent=percent, max_redemptions=max_redemptions, valid_from=valid_from,
                valid_until=valid_until, new_customers_only=new_customers_only, created_by=created_by,
            )
    except IntegrityError as exc:
        if PromoCode.objects.filter(code=code).exists():
            raise InvalidPromoCode(_("This code exists already.")) from exc
        raise
    logger.info("promo code %s created by %s", promo.code, getattr(created_by, "pk", None))
    return promo


def redeem_promo_code(*, customer: Customer, code: str) -> PromoRedemption:
    """Redeem ``code`` for ``customer``: an amount code credits at once, a percent code waits.

    Raises ``PromoCodeNotValid`` kinds (unknown, expired or switched off, used up, not for this
    customer: one message), ``PromoCodeAlreadyRedeemed``, ``PromoCodeAttemptsExceeded`` (too many
    wrong codes lately: the code is not even looked up) and ``PromoCodesUnavailable``.
    """
    attempts.take(customer.pk)
    try:
        redemption = _redeem(customer=customer, code=normalise_code(code))
    except PromoCodeNotValid:
        raise  # a wrong code: the attempt stays counted
    except BaseException:
        attempts.release(customer.pk)
        raise
    attempts.release(customer.pk)
    return redemption


def _redeem(*, customer: Customer, code: str) -> PromoRedemption:
    now = timezone.now()
    with transaction.atomic(durable=True):
        promo = PromoCode.objects.filter(code=code).first() if CODE_PATTERN.fullmatch(code) else None
        if promo is None:
            raise PromoCodeUnknown()
        if not promo.is_active or (promo.valid_from and now < promo.valid_from) or (
            promo.valid_until and now >= promo.valid_until
        ):
            raise PromoCodeExpired()
        if PromoRedemption.objects.filter(promo_code=promo, customer=customer).exists():
            raise PromoCodeAlreadyRedeemed()
        if promo.new_customers_only and selectors.has_paid(customer):
            raise PromoCodeNotForCustomer()
        # The row lock of this UPDATE queues the code's redemptions until each commits.
        counted = PromoCode.objects.filter(pk=promo.pk, redemptions_count__lt=F("max_redemptions")).update(
            redemptions_count=F("redemptions_count") + 1
        )
        if not counted:
            raise PromoCodeUsedUp()
        try:
            with transaction.atomic():
                redemption = PromoRedemption.objects.create(
                    promo_code=promo, customer=customer, amount=promo.amount, percent=promo.percent
                )
        except IntegrityError as exc:
            raise PromoCodeAlreadyRedeemed() from exc  # the same customer, concurrently; the count rolls back
        if promo.amount:
            transfer = credit_bonus(
                customer=customer, amount=promo.amount, idempotency_key=f"promo:{redemption.pk}", kind=PROMO,
                description=f"Promo code {promo.code}",
            )
            redemption.transfer = transfer
            redemption.save(update_fields=["transfer"])
            announce_credit(sender=PromoRedemption, transfer=transfer, customer=customer, kind=PROMO)
    logger.info("customer %s redeemed promo code %s", customer.pk, promo.code)
    return redemption
