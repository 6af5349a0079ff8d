"""Telegram Stars: the invoice, the pre-checkout answer, and the credit of a ``successful_payment``.

The invoice's payload is ``<payment id>.<HMAC>`` (SECRET_KEY-signed): it names our payment and
proves we issued it. The credit's ledger key is ``stars:<telegram_payment_charge_id>``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import gettext as _

from billing.money import format_amount

from ..exceptions import (
    CustomerBlocked,
    StarsInvoiceAlreadyPaid,
    StarsInvoiceForeign,
    StarsInvoiceMismatch,
    StarsInvoiceStale,
    StarsInvoiceTampered,
)
from ..models import REFUNDABLE_STATUSES, Payment, PaymentStatus, Provider
from .topups import mark_payment_canceled, mark_payment_succeeded

logger = logging.getLogger(__name__)

STARS_CURRENCY = "XTR"


@dataclass(frozen=True)
class StarsInvoice:
    """What ``sendInvoice`` / ``createInvoiceLink`` need (provider_token is empty for Stars)."""

    title: str
    description: str
    payload: str
    currency: str
    prices: list[dict] = field(default_factory=list)  # [{"label": str, "amount": stars}]
    provider_token: str = ""


def _stars_signature(payment: Payment, telegram_id: int) -> str:
    value = f"{payment.pk}:{telegram_id}:{payment.stars_amount}:{payment.created_at.timestamp():.6f}"
    return salted_hmac("payments.stars-invoice", value, algorithm="sha256").hexdigest()[:40]


def stars_invoice_payload(payment: Payment) -> str:
    """``<payment id>.<HMAC>``: names our payment and proves we issued it (SECRET_KEY-signed)."""
    return f"{payment.pk}.{_stars_signature(payment, payment.customer.telegram_id)}"


def build_stars_invoice(*, payment: Payment) -> StarsInvoice:
    if payment.provider != Provider.STARS:
        raise ValueError("not a Stars payment")
    with translation.override(payment.customer.language):
        title = _("Balance top-up")
        description = _("%(amount)s on your balance for %(stars)s ⭐") % {
            "amount": format_amount(payment.amount, payment.customer.language), "stars": payment.stars_amount,
        }
        label = _("Top-up")
    return StarsInvoice(
        title=str(title)[:32], description=str(description)[:255], payload=stars_invoice_payload(payment),
        currency=STARS_CURRENCY, prices=[{"label": str(label), "amount": payment.stars_amount}],
    )


def _payment_from_payload(payload: str) -> Payment:
    """The Stars payment a payload names, if its signature is ours; else StarsInvoiceTampered."""
    pk, _sep, signature = (payload or "").partition(".")
    if not pk.isdigit() or not signature:
        raise StarsInvoiceTampered()
    payment = Payment.objects.select_related("customer").filter(pk=int(pk), provider=Provider.STARS).first()
    if payment is None or not constant_time_compare(
        signature, _stars_signature(payment, payment.customer.telegram_id)
    ):
        raise StarsInvoiceTampered()
    return payment


def _check_stars_terms(payment: Payment, *, currency: str, total_amount: int, telegram_user_id: int) -> None:
    if int(telegram_user_id) != payment.customer.telegram_id:
        raise StarsInvoiceForeign()
    if currency != STARS_CURRENCY or int(total_amount) != payment.stars_amount:
        raise StarsInvoiceMismatch()


def validate_pre_checkout(*, payload: str, currency: str, total_amount: int, telegram_user_id: int) -> Payment:
    """Decide a ``pre_checkout_query`` (Telegram wants the answer within 10 s; this is two queries).

    Refuses a payload we did not sign or that was edited, one issued to someone else, a wrong
    currency or total, an invoice already paid or canceled, and one older than
    STARS_INVOICE_TTL_SECONDS. The bot answers ``ok=False, error_message=str(exc)``.
    """
    payment = _payment_from_payload(payload)
    _check_stars_terms(payment, currency=currency, total_amount=total_amount, telegram_user_id=telegram_user_id)
    if payment.status != PaymentStatus.PENDING:
        raise StarsInvoiceAlreadyPaid() if payment.status in REFUNDABLE_STATUSES else StarsInvoiceStale()
    if payment.customer.is_blocked:
        raise CustomerBlocked()
    if timezone.now() - payment.created_at > timedelta(seconds=settings.STARS_INVOICE_TTL_SECONDS):
        raise StarsInvoiceStale()
    return payment


def confirm_stars_payment(
    *, payload: str, currency: str, total_amount: int, telegram_payment_charge_id: str, telegram_user_id: int
) -> Payment:
    """Credit a ``successful_payment``: key ``stars:<telegram_payment_charge_id>``, once.

    Telegram has taken the Stars by now, so staleness no longer matters; a delivery repeated any
    number of times (or concurrently) returns the same payment and credits nothing more. If the
    invoice was somehow paid again with another charge, that charge gets its own Payment row and
    its own credit (the customer paid twice; staff can refund one).
    """
    if not telegram_payment_charge_id:
        raise ValueError("telegram_payment_charge_id is required")
    payment = _payment_from_payload(payload)
    try:
        _check_stars_terms(payment, currency=currency, total_amount=total_amount, telegram_user_id=telegram_user_id)
    except (StarsInvoiceForeign, StarsInvoiceMismatch):
        logger.error(
            "Stars charge %s does not match invoice #%s (user %s, %s %s): not credited, refund it by hand",
            telegram_payment_charge_id, payment.pk, telegram_user_id, total_amount, currency,
        )
        raise
    charge = telegram_payment_charge_id
    recorded = _stars_payment_by_charge(charge)
    if recorded is not None:
        return recorded  # a repeated delivery: credited before
    credited = _credit_charge(payment, charge) if payment.status == PaymentStatus.PENDING else None
    if credited is not None:
        return credited  # the invoice's own payment
    return _credit_as_its_own_payment(invoice=payment, charge=charge)  # the invoice was paid or canceled before


def _credit_charge(payment: Payment, charge: str) -> Payment | None:
    """Credit pending ``payment`` with ``charge``: the payment that records the charge now, or None
    when ``payment`` was moved meanwhile by something else (canceled, or paid by another charge).
    """
    try:
        credited = mark_payment_succeeded(payment=payment, provider_payment_id=charge)
    except IntegrityError:
        # The same charge was recorded concurrently on another row (provider ids are unique).
        return _stars_payment_by_charge(charge)
    return credited if credited.provider_payment_id == charge else None


def _credit_as_its_own_payment(*, invoice: Payment, charge: str) -> Payment:
    """A charge for an invoice no longer pending: a Payment row and a credit of its own."""
    logger.warning("Stars invoice #%s paid again (charge %s): recorded as its own payment", invoice.pk, charge)
    with transaction.atomic(durable=True):
        repeat = Payment.objects.create(
            provider=Provider.STARS, customer=invoice.customer, amount=invoice.amount,
            stars_amount=invoice.stars_amount, metadata={"invoice_payment_id": invoice.pk},
        )
    recorded = _credit_charge(repeat, charge)
    if recorded is None or recorded.pk != repeat.pk:
        mark_payment_canceled(payment=repeat, reason="duplicate charge")  # the charge is on another row
    return recorded


def _stars_payment_by_charge(charge_id: str) -> Payment | None:
    return Payment.objects.filter(provider=Provider.STARS, provider_payment_id=charge_id).first()


