"""Top-ups: starting one (YooKassa or Stars) and the two ways it ends, for every provider.

How a payment credits exactly once, whatever arrives:
- ``pending -> succeeded`` is a conditional UPDATE in one durable transaction with the credit,
  which is written just before it and rolled back unless the UPDATE changed the row: only the
  actor that moves the payment credits. The ledger key ``<provider>:<provider payment id>``
  (unique in billing, and ``provider_payment_id`` is unique per provider) is a second wall.
- What the change announces (``payments.signals``) is sent inside that same transaction, so the
  bot's message about it commits with it or not at all.
"""
from __future__ import annotations

import logging
import math

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from billing import services as billing
from billing.models import Customer
from billing.signals import send_in_transaction
from billing.money import check_kopecks, format_amount, to_api_value

from .. import yookassa_client
from ..exceptions import CustomerBlocked, PaymentProviderRefused, ReceiptContactRequired, TopupAmountOutOfRange, UnknownProvider
from ..models import Payment, PaymentStatus, Provider
from ..signals import payment_canceled, payment_succeeded

logger = logging.getLogger(__name__)

YOOKASSA_CURRENCY = "RUB"


# --- starting a top-up ------------------------------------------------------------------------


def check_topup_amount(amount: int) -> int:
    """Refuse amounts outside TOPUP_MIN_KOPECKS..TOPUP_MAX_KOPECKS (and non-kopeck values)."""
    check_kopecks(amount)
    low, high = settings.TOPUP_MIN_KOPECKS, settings.TOPUP_MAX_KOPECKS
    if not low <= amount <= high:
        raise TopupAmountOutOfRange(
            _("A top-up must be between %(min)s and %(max)s.")
            % {"min": format_amount(low), "max": format_amount(high)}
        )
    return amount


def create_topup(
    *, customer: Customer, amount: int, provider: str = Provider.YOOKASSA, email: str = "", phone: str = "",
    metadata: dict | None = None,
) -> Payment:
    """Start a top-up of ``amount`` kopecks.

    YooKassa: creates the provider payment (redirect confirmation, capture) and returns our
    Payment with ``confirmation_url`` set. Stars: returns a pending Payment for
    ``ceil(amount / STARS_RATE_KOPECKS)`` Stars; ``build_stars_invoice`` gives the invoice.
    ``email``/``phone`` go on the 54-FZ receipt when YOOKASSA_RECEIPTS is on. ``metadata`` is
    kept on the Payment row, written with it (promotions keeps the top-up's bonus there).
    """
    if provider == Provider.STARS:
        return create_stars_topup(
            customer=customer, stars=math.ceil(check_kopecks(amount) / settings.STARS_RATE_KOPECKS), metadata=metadata
        )
    if provider != Provider.YOOKASSA:
        raise UnknownProvider()
    check_topup_amount(amount)
    _check_customer(customer)
    receipt_customer = _receipt_customer(email=email, phone=phone) if settings.YOOKASSA_RECEIPTS else None
    with transaction.atomic(durable=True):
        payment = Payment.objects.create(
            provider=Provider.YOOKASSA, customer=customer, amount=amount,
            metadata={**(metadata or {}), **({"receipt_customer": receipt_customer} if receipt_customer else {})},
        )
    params = {
        "amount": {"value": to_api_value(amount), "currency": YOOKASSA_CURRENCY},
        "confirmation": {"type": "redirect", "return_url": settings.YOOKASSA_RETURN_URL},
        "capture": True,
        "description": _topup_description(payment, customer),
        "metadata": {
            "payment_id": str(payment.pk),
            "customer_id": str(customer.pk),
            "telegram_id": str(customer.telegram_id),
        },
    }
    if receipt_customer:
        params["receipt"] = build_receipt(amount=amount, customer=receipt_customer, description=params["description"])
    try:
        remote = yookassa_client.create_payment(params, idempotency_key=str(payment.idempotence_key))
    except PaymentProviderRefused:
        # Nothing was created there; the row stays as a record of the attempt.
        mark_payment_canceled(payment=payment, reason="refused at creation")
        raise
    # PaymentProviderUnavailable propagates: the row stays pending without a provider id and
    # sync_pending_payments cancels it later (the customer never got a link to pay).
    Payment.objects.filter(pk=payment.pk, provider_payment_id__isnull=True).update(
        provider_payment_id=remote.id, confirmation_url=remote.confirmation_url, updated_at=timezone.now()
    )
    payment.refresh_from_db()
    return payment


def create_stars_topup(*, customer: Customer, stars: int, metadata: dict | None = None) -> Payment:
    """A pending Stars payment crediting ``stars * STARS_RATE_KOPECKS`` kopecks when paid
    (``metadata`` kept on the row, as in ``create_topup``)."""
    if isinstance(stars, bool) or not isinstance(stars, int) or stars <= 0:
        raise TopupAmountOutOfRange()
    amount = check_topup_amount(stars * settings.STARS_RATE_KOPECKS)
    _check_customer(customer)
    with transaction.atomic(durable=True):
        return Payment.objects.create(
            provider=Provider.STARS, customer=customer, amount=amount, stars_amount=stars, metadata=dict(metadata or {})
        )


def _check_customer(customer: Customer) -> None:
    if customer.is_blocked:
        raise CustomerBlocked()


def _topup_description(payment: Payment, customer: Customer) -> str:
    with translation.override(customer.language):
        return (_("Balance top-up #%(id)s") % {"id": payment.pk})[:128]


def _receipt_customer(*, email: str, phone: str) -> dict:
    if email:
        return {"email": email}
    if phone:
        return {"phone": phone}
    if settings.YOOKASSA_RECEIPT_EMAIL:
        return {"email": settings.YOOKASSA_RECEIPT_EMAIL}
    raise ReceiptContactRequired()


def build_receipt(*, amount: int, customer: dict, description: str) -> dict:
    """A 54-FZ receipt with one item: the top-up itself."""
    return {
        "customer": customer,
        "items": [
            {
                "description": description,
                "quantity": "1.00",
                "amount": {"value": to_api_value(amount), "currency": YOOKASSA_CURRENCY},
                "vat_code": settings.YOOKASSA_RECEIPT_VAT_CODE,
                "payment_mode": settings.YOOKASSA_RECEIPT_PAYMENT_MODE,
                "payment_subject": settings.YOOKASSA_RECEIPT_PAYMENT_SUBJECT,
            }
        ],
    }


# --- state changes shared by every provider ---------------------------------------------------


def mark_payment_succeeded(*, payment: Payment, provider_payment_id: str | None = None) -> Payment:
    """``pending -> succeeded`` and credit the wallet, once, in one transaction.

    Only the caller whose conditional UPDATE changes the row credits; everyone else gets the
    payment as it is. ``provider_payment_id`` is recorded on the way (Stars learn it here).
    """
    now = timezone.now()
    changes = {"status": PaymentStatus.SUCCEEDED, "succeeded_at": now, "updated_at": now}
    if provider_payment_id:
        changes["provider_payment_id"] = provider_payment_id
    with transaction.atomic(durable=True):
        # Credit first, so the status, the provider id and the link to the credit are one
        # conditional UPDATE. Losing it (someone else moved the payment: credited it under this
        # same key, or canceled it) rolls the credit back with everything else.
        transfer = billing.credit_balance(
            customer=payment.customer, amount=payment.amount,
            idempotency_key=Payment.credit_key(
                provider=payment.provider, provider_payment_id=provider_payment_id or payment.provider_payment_id
            ),
            source=payment.provider, description=f"Top-up #{payment.pk} ({payment.get_provider_display()})",
        )
        won = _claim_pending(payment_id=payment.pk, credit_transfer_id=transfer.pk, changes=changes)
        if won:
            # We moved it from pending: its amount, customer and provider are as the caller read them.
            current = payment
            for name, value in changes.items():
                setattr(current, name, value)
            current.credit_transfer = transfer
            # Inside the transaction: the bot's message commits with the credit or not at all.
            send_in_transaction(
                payment_succeeded, logger=logger, sender=Payment, payment=current, balance=transfer.available_after
            )
        else:
            transaction.set_rollback(True)
    if not won:
        return Payment.objects.select_related("customer").get(pk=payment.pk)
    logger.info("payment %s succeeded: credited %s to customer %s", current.pk, current.amount, current.customer_id)
    return current


def _claim_pending(*, payment_id: int, credit_transfer_id: int, changes: dict) -> bool:
    """The conditional UPDATE of ``mark_payment_succeeded``: ``changes`` and the credit's link,
    only if the payment is still pending. True when this call moved it.

    Written as SQL rather than ``QuerySet.update``: it runs for every credited payment, and
    building the statement through the ORM cost several times what running it does.
    """
    meta = Payment._meta
    values = {**changes, "credit_transfer_id": credit_transfer_id}
    assignments, params = [], []
    for name, value in values.items():
        field = meta.get_field(name)
        assignments.append(f'"{field.column}" = %s')
        params.append(field.get_db_prep_save(value, connection))
    sql = (
        f'UPDATE "{meta.db_table}" SET {", ".join(assignments)} '
        f'WHERE "{meta.pk.column}" = %s AND "{meta.get_field("status").column}" = %s'
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, payment_id, PaymentStatus.PENDING])
        return cursor.rowcount == 1


def mark_payment_canceled(*, payment: Payment, reason: str = "") -> Payment:
    """``pending -> canceled``; a payment already final stays as it is."""
    now = timezone.now()
    with transaction.atomic(durable=True):
        won = Payment.objects.filter(pk=payment.pk, status=PaymentStatus.PENDING).update(
            status=PaymentStatus.CANCELED, canceled_at=now, updated_at=now, cancellation_reason=reason[:128]
        )
        current = Payment.objects.get(pk=payment.pk)
        if won:
            send_in_transaction(payment_canceled, logger=logger, sender=Payment, payment=current)
    if not won and current.status != PaymentStatus.CANCELED:
        logger.warning("payment %s: cancel ignored, it is already %s", current.pk, current.status)
    return current


