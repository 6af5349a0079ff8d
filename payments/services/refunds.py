"""Refunds: the wallet debit first, then the provider; what the provider says after.

Refund state machine (``Refund.status``)::

    request_refund   pending   one durable transaction: the Refund row + the wallet debit
                                (key ``refund:<refund id>``); refuses if the customer spent it,
                                or if it is more than the wallet's cash (bonus money is never
                                paid out: ``billing.selectors.cash_refundable``)
    submit_refund    pending -> succeeded   provider said yes (Payment.refunded_amount grows)
                     pending -> failed      provider said no: the wallet is credited back
                                            (key ``refund-failed:<refund id>``)
                     pending                provider unreachable: ``sync_pending_payments``
                                            submits again with the same Idempotence-Key

A crash between the two steps leaves a pending Refund whose money is already out of the wallet;
the next sync submits it (same key: the provider refunds once).
"""
from __future__ import annotations

import logging
import uuid

from django.db import transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _

from billing import selectors as billing_selectors
from billing import services as billing
from billing.exceptions import InsufficientFunds
from billing.money import check_kopecks, format_amount, to_api_value
from billing.signals import send_in_transaction

from .. import telegram_stars, yookassa_client
from ..exceptions import (
    PartialStarsRefundNotSupported,
    PaymentNotRefundable,
    PaymentProviderRefused,
    PaymentProviderUnavailable,
    RefundExceedsBalance,
    RefundExceedsCash,
    RefundExceedsPayment,
    RefundRefused,
)
from ..models import REFUNDABLE_STATUSES, Payment, PaymentStatus, Provider, Refund, RefundStatus
from ..selectors import refundable_amount
from ..signals import refund_succeeded
from ..yookassa_client import RemoteRefund
from .topups import YOOKASSA_CURRENCY, build_receipt

logger = logging.getLogger(__name__)


def refund_payment(
    *, payment: Payment, amount: int, idempotency_key: str | uuid.UUID, staff_user=None, reason: str = ""
) -> Refund:
    """Refund ``amount`` kopecks of a payment: debit the wallet, then ask the provider.

    The same ``idempotency_key`` refunds once however often it is given. For operators' code:
    staff refund through ``payments.staff.staff_refund_payment`` (their limits, four eyes).
    """
    refund = request_refund(
        payment=payment, amount=amount, idempotency_key=idempotency_key, staff_user=staff_user, reason=reason
    )
    return submit_refund(refund=refund)


def request_refund(
    *, payment: Payment, amount: int, idempotency_key: str | uuid.UUID, staff_user=None, reason: str = ""
) -> Refund:
    """Step 1: the Refund row and the wallet debit, in one durable transaction (nothing sent yet)."""
    check_kopecks(amount)
    key = _refund_key(idempotency_key)
    with transaction.atomic(durable=True):
        return request_refund_locked(payment=payment, amount=amount, refund_key=key, staff_user=staff_user, reason=reason)


def request_refund_locked(*, payment: Payment, amount: int, refund_key: uuid.UUID, staff_user, reason: str) -> Refund:
    """The body of ``request_refund`` inside the caller's transaction (``payments.staff`` has its own).

    Lock order: the payment row (it serialises refunds of one payment, and double clicks), then
    the wallet (it serialises refunds of all the customer's payments with everything else that
    moves the wallet), then the debit. The cash check and the debit run under both locks, so two
    refunds of two payments cannot each pass on the same cash.
    """
    # The payment row only (``of``): the customer's row is no lock of this contract; the wallet is.
    locked = Payment.objects.select_for_update(of=("self",)).select_related("customer").get(pk=payment.pk)
    existing = Refund.objects.filter(idempotence_key=refund_key).first()
    if existing is not None:
        if existing.payment_id != locked.pk or existing.amount != amount:
            raise RefundRefused(_("This refund form was already used for another refund. Open it again."))
        return existing
    check_refundable(locked, amount, lock_wallet=True)
    refund = Refund.objects.create(
        payment=locked, amount=amount, idempotence_key=refund_key, staff_user=staff_user, reason=reason[:255]
    )
    try:
        transfer = billing.debit_balance(
            customer=locked.customer, amount=amount, idempotency_key=refund.debit_idempotency_key,
            destination=locked.provider, description=f"Refund #{refund.pk} of payment #{locked.pk}",
            staff_user=staff_user,
        )
    except InsufficientFunds as exc:
        # Not reached while the check above holds the wallet lock; the database has the last word.
        raise _exceeds_balance(available=exc.available or 0, required=amount) from exc
    Refund.objects.filter(pk=refund.pk).update(debit_transfer=transfer)
    refund.debit_transfer = transfer
    return refund


def check_refundable(payment: Payment, amount: int, *, lock_wallet: bool = False) -> None:
    """Refuse a refund of ``amount`` the payment cannot take (its status, what is left, Stars in
    full) or the wallet cannot (what is left of it, and of that what came in as cash).

    ``lock_wallet`` locks the wallet for the rest of the caller's transaction before reading it:
    the check of a caller that debits next (``request_refund_locked``).
    """
    if payment.status not in REFUNDABLE_STATUSES:
        raise PaymentNotRefundable()
    if amount > refundable_amount(payment):
        raise RefundExceedsPayment(
            _("At most %(amount)s of this payment can still be refunded.")
            % {"amount": format_amount(refundable_amount(payment))}
        )
    if payment.provider == Provider.STARS and amount != payment.amount:
        raise PartialStarsRefundNotSupported()
    cash = billing_selectors.cash_refundable(payment.customer, lock=lock_wallet)
    if amount > cash:
        available = billing_selectors.get_balance(payment.customer)
        if amount > available:
            raise _exceeds_balance(available=available, required=amount)
        raise RefundExceedsCash(cash=format_amount(cash))


def _exceeds_balance(*, available: int, required: int) -> RefundExceedsBalance:
    return RefundExceedsBalance(
        _("The customer has already spent this money: %(available)s is left on the wallet, "
          "the refund needs %(required)s.")
        % {"available": format_amount(available), "required": format_amount(required)}
    )


def _refund_key(idempotency_key: str | uuid.UUID) -> uuid.UUID:
    try:
        return idempotency_key if isinstance(idempotency_key, uuid.UUID) else uuid.UUID(str(idempotency_key))
    except ValueError as exc:
        raise RefundRefused(_("This refund form is damaged. Open it again.")) from exc


def submit_refund(*, refund: Refund) -> Refund:
    """Step 2: ask the provider (again, with the same key, if the first try got no answer)."""
    refund = Refund.objects.select_related("payment__customer").get(pk=refund.pk)
    if refund.status != RefundStatus.PENDING:
        return refund
    payment = refund.payment
    try:
        if payment.provider == Provider.STARS:
            telegram_stars.refund_star_payment(
                user_id=payment.customer.telegram_id, telegram_payment_charge_id=payment.provider_payment_id
            )
            return complete_refund(refund=refund)
        remote = yookassa_client.create_refund(_yookassa_refund_params(refund), idempotency_key=str(refund.idempotence_key))
    except PaymentProviderUnavailable:
        logger.warning("refund %s: provider unreachable; sync_payments will submit it again", refund.pk)
        return refund
    except PaymentProviderRefused as exc:
        return fail_refund(refund=refund, reason=getattr(exc, "detail", "") or str(exc))
    Refund.objects.filter(pk=refund.pk, provider_refund_id__isnull=True).update(provider_refund_id=remote.id)
    refund.provider_refund_id = remote.id
    return apply_remote_refund(refund=refund, remote=remote)


def _yookassa_refund_params(refund: Refund) -> dict:
    payment = refund.payment
    params = {
        "payment_id": payment.provider_payment_id,
        "amount": {"value": to_api_value(refund.amount), "currency": YOOKASSA_CURRENCY},
        "description": f"Refund #{refund.pk} of top-up #{payment.pk}"[:250],
    }
    receipt_customer = payment.metadata.get("receipt_customer")
    if receipt_customer:
        params["receipt"] = build_receipt(amount=refund.amount, customer=receipt_customer, description=params["description"][:128])
    return params


def apply_remote_refund(*, refund: Refund, remote: RemoteRefund) -> Refund:
    if remote.status == "succeeded":
        if remote.amount != refund.amount:
            logger.error("refund %s: YooKassa refunded %s, we asked %s", refund.pk, remote.amount, refund.amount)
        return complete_refund(refund=refund)
    if remote.status == "canceled":
        return fail_refund(refund=refund, reason="canceled by YooKassa")
    return refund


def complete_refund(*, refund: Refund) -> Refund:
    """``pending -> succeeded``; the payment's refunded amount and status follow, once."""
    now = timezone.now()
    with transaction.atomic(durable=True):
        won = Refund.objects.filter(pk=refund.pk, status=RefundStatus.PENDING).update(
            status=RefundStatus.SUCCEEDED, completed_at=now, updated_at=now
        )
        current = Refund.objects.select_related("payment").get(pk=refund.pk)
        if not won:
            return current
        moved = Payment.objects.filter(
            pk=current.payment_id, status__in=REFUNDABLE_STATUSES,
            refunded_amount__lte=F("amount") - current.amount,
        ).update(
            refunded_amount=F("refunded_amount") + current.amount,
            status=Case(
                When(amount=F("refunded_amount") + current.amount, then=Value(PaymentStatus.REFUNDED)),
                default=Value(PaymentStatus.PARTIALLY_REFUNDED),
            ),
            updated_at=now,
        )
        if moved != 1:
            raise RuntimeError(f"refund {current.pk} does not fit payment {current.payment_id}")
        current.payment.refresh_from_db()
        send_in_transaction(refund_succeeded, logger=logger, sender=Refund, refund=current, payment=current.payment)
    logger.info("refund %s of payment %s succeeded (%s)", current.pk, current.payment_id, current.amount)
    return current


def fail_refund(*, refund: Refund, reason: str) -> Refund:
    """``pending -> failed``; the money debited for it goes back to the wallet, once."""
    now = timezone.now()
    with transaction.atomic(durable=True):
        won = Refund.objects.filter(pk=refund.pk, status=RefundStatus.PENDING).update(
            status=RefundStatus.FAILED, completed_at=now, updated_at=now, failure_reason=reason[:255]
        )
        current = Refund.objects.select_related("payment__customer").get(pk=refund.pk)
        if won and current.debit_transfer_id:
            transfer = billing.credit_balance(
                customer=current.payment.customer, amount=current.amount,
                idempotency_key=current.reversal_idempotency_key, source=current.payment.provider,
                description=f"Refund #{current.pk} failed: money back",
            )
            Refund.objects.filter(pk=current.pk).update(reversal_transfer=transfer)
            current.reversal_transfer = transfer
    if won:
        logger.warning("refund %s failed (%s); the wallet was credited back", current.pk, reason)
    return current




def sync_yookassa_refund(*, provider_refund_id: str) -> Refund | None:
    refund = Refund.objects.filter(provider_refund_id=provider_refund_id).select_related("payment").first()
    if refund is None:
        # Possibly ours, before submit_refund stored the id: sync_pending_payments finds it.
        logger.warning("YooKassa refund %s is not known (yet); ignored", provider_refund_id)
        return None
    if refund.status != RefundStatus.PENDING:
        return refund
    return apply_remote_refund(refund=refund, remote=yookassa_client.fetch_refund(provider_refund_id))
