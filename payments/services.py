"""Top-ups, what providers tell us about them, Telegram Stars, and refunds.

How a payment credits exactly once, whatever arrives:
- A notification's body is never trusted: it only names a payment, and we ask the API
  (``yookassa_client.fetch_payment``) what happened to it.
- ``pending -> succeeded`` is a conditional UPDATE in one durable transaction with the credit,
  which is written just before it and rolled back unless the UPDATE changed the row: only the
  actor that moves the payment credits. The ledger key ``<provider>:<provider payment id>``
  (unique in billing, and ``provider_payment_id`` is unique per provider) is a second wall.
- A payment that is already final answers at once, without asking the API again (a process
  remembers the ones it has seen final; otherwise one indexed read tells).

Refund state machine (``Refund.status``)::

    request_refund   pending   one durable transaction: the Refund row + the wallet debit
                                (key ``refund:<refund id>``); refuses if the customer spent it
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
import math
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone, translation
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import gettext as _

from billing import services as billing
from billing.exceptions import InsufficientFunds
from billing.models import Customer
from billing.money import check_kopecks, format_amount, to_api_value
from genbot import counters

from . import telegram_stars, yookassa_client
from .selectors import payment_for_notification, refundable_amount
from .exceptions import (
    CustomerBlocked,
    PartialStarsRefundNotSupported,
    PaymentNotRefundable,
    ProviderError,
    ProviderRefused,
    ProviderUnavailable,
    ReceiptContactRequired,
    RefundExceedsBalance,
    RefundExceedsPayment,
    RefundRefused,
    StarsInvoiceAlreadyPaid,
    StarsInvoiceForeign,
    StarsInvoiceMismatch,
    StarsInvoiceStale,
    StarsInvoiceTampered,
    TopupAmountOutOfRange,
    UnknownProvider,
)
from .models import (
    REFUNDABLE_STATUSES,
    Payment,
    PaymentStatus,
    Provider,
    Refund,
    RefundStatus,
)
from .signals import payment_canceled, payment_succeeded, refund_succeeded
from .yookassa_client import RemotePayment, RemoteRefund

logger = logging.getLogger(__name__)

STARS_CURRENCY = "XTR"
YOOKASSA_CURRENCY = "RUB"
# Events whose object is a payment: each makes us ask the API about that payment.
PAYMENT_EVENTS = frozenset({"payment.succeeded", "payment.canceled", "payment.waiting_for_capture"})
REFUND_EVENTS = frozenset({"refund.succeeded"})


# --- top-ups --------------------------------------------------------------------------------


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
    *, customer: Customer, amount: int, provider: str = Provider.YOOKASSA, email: str = "", phone: str = ""
) -> Payment:
    """Start a top-up of ``amount`` kopecks.

    YooKassa: creates the provider payment (redirect confirmation, capture) and returns our
    Payment with ``confirmation_url`` set. Stars: returns a pending Payment for
    ``ceil(amount / STARS_RATE_KOPECKS)`` Stars; ``build_stars_invoice`` gives the invoice.
    ``email``/``phone`` go on the 54-FZ receipt when YOOKASSA_RECEIPTS is on.
    """
    if provider == Provider.STARS:
        return create_stars_topup(customer=customer, stars=math.ceil(check_kopecks(amount) / settings.STARS_RATE_KOPECKS))
    if provider != Provider.YOOKASSA:
        raise UnknownProvider()
    check_topup_amount(amount)
    _check_customer(customer)
    receipt_customer = _receipt_customer(email=email, phone=phone) if settings.YOOKASSA_RECEIPTS else None
    with transaction.atomic(durable=True):
        payment = Payment.objects.create(
            provider=Provider.YOOKASSA, customer=customer, amount=amount,
            metadata={"receipt_customer": receipt_customer} if receipt_customer else {},
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
        params["receipt"] = _receipt(amount=amount, customer=receipt_customer, description=params["description"])
    try:
        remote = yookassa_client.create_payment(params, idempotency_key=str(payment.idempotence_key))
    except ProviderRefused:
        # Nothing was created there; the row stays as a record of the attempt.
        mark_payment_canceled(payment=payment, reason="refused at creation")
        raise
    # ProviderUnavailable propagates: the row stays pending without a provider id and
    # sync_pending_payments cancels it later (the customer never got a link to pay).
    Payment.objects.filter(pk=payment.pk, provider_payment_id__isnull=True).update(
        provider_payment_id=remote.id, confirmation_url=remote.confirmation_url, updated_at=timezone.now()
    )
    payment.refresh_from_db()
    return payment


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


def _receipt(*, amount: int, customer: dict, description: str) -> dict:
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


def _announce(signal, **kwargs) -> None:
    """Send a signal after commit; a failing receiver is logged, never undoes or fails the change."""
    for receiver, result in signal.send_robust(**kwargs):
        if isinstance(result, Exception):
            logger.error("receiver %r of %s failed", receiver, kwargs.get("sender"), exc_info=result)



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
            balance = transfer.available_after
            transaction.on_commit(
                lambda: _announce(payment_succeeded, sender=Payment, payment=current, balance=balance)
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
            transaction.on_commit(lambda: _announce(payment_canceled, sender=Payment, payment=current))
    if not won and current.status != PaymentStatus.CANCELED:
        logger.warning("payment %s: cancel ignored, it is already %s", current.pk, current.status)
    return current


# --- YooKassa: notifications and the API's word -----------------------------------------------


def apply_remote_payment(*, payment: Payment, remote: RemotePayment) -> Payment:
    """Move our payment to what the YooKassa API says about it (never what a notification says)."""
    if remote.id != payment.provider_payment_id:
        raise ValueError(f"remote payment {remote.id} is not payment {payment.pk}")
    if remote.status == "succeeded":
        if not _remote_matches(payment, remote):
            logger.error(
                "YooKassa payment %s (ours #%s) does not match: ours %s %s, theirs %s %s, metadata %s; "
                "not credited",
                remote.id, payment.pk, payment.amount, YOOKASSA_CURRENCY, remote.amount, remote.currency,
                remote.metadata,
            )
            return payment
        return mark_payment_succeeded(payment=payment)
    if remote.status == "canceled":
        return mark_payment_canceled(payment=payment, reason=remote.cancellation_reason or "canceled")
    return payment  # pending, waiting_for_capture: nothing happened yet


def _remote_matches(payment: Payment, remote: RemotePayment) -> bool:
    ours = remote.metadata.get("payment_id")
    return (
        remote.amount == payment.amount
        and remote.currency == YOOKASSA_CURRENCY
        and (ours is None or str(ours) == str(payment.pk))
    )


def sync_yookassa_payment(*, provider_payment_id: str) -> Payment | None:
    """Bring our record of a YooKassa payment up to date; None when it is not ours.

    A payment already final answers from the database alone: no API call.
    """
    # One read through the unique index, with the customer the credit and the message need.
    payment = payment_for_notification(provider=Provider.YOOKASSA, provider_payment_id=provider_payment_id)
    if payment is None:
        logger.warning("YooKassa payment %s is not one of ours; ignored", provider_payment_id)
        return None
    if payment.is_final:
        return payment
    return apply_remote_payment(payment=payment, remote=yookassa_client.fetch_payment(provider_payment_id))


def sync_yookassa_refund(*, provider_refund_id: str) -> Refund | None:
    refund = Refund.objects.filter(provider_refund_id=provider_refund_id).select_related("payment").first()
    if refund is None:
        # Possibly ours, before submit_refund stored the id: sync_pending_payments finds it.
        logger.warning("YooKassa refund %s is not known (yet); ignored", provider_refund_id)
        return None
    if refund.status != RefundStatus.PENDING:
        return refund
    return apply_remote_refund(refund=refund, remote=yookassa_client.fetch_refund(provider_refund_id))


class _FinalPayments:
    """Provider payment ids this process has seen final: a bounded, thread-safe LRU set.

    Only ``pending`` ever changes into something else (see models), so "final" is permanent and
    a repeat about a payment in here can be answered without the database or the API.
    """

    def __init__(self, size: int = 100_000):
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def __contains__(self, provider_payment_id: str) -> bool:
        with self._lock:
            if provider_payment_id in self._ids:
                self._ids.move_to_end(provider_payment_id)
                return True
            return False

    def add(self, provider_payment_id: str) -> None:
        with self._lock:
            self._ids[provider_payment_id] = None
            if len(self._ids) > self._size:
                self._ids.popitem(last=False)


_final_yookassa_payments = _FinalPayments()


def handle_yookassa_notification(*, event: str, object_id: str) -> Payment | Refund | None:
    """Act on a notification that passed the sender check: ask the API, apply its answer.

    Returns what it touched (None: nothing to do, or not ours). Raises ProviderError when the
    API cannot be asked (the view answers 5xx so YooKassa retries).
    """
    if event in PAYMENT_EVENTS:
        if object_id in _final_yookassa_payments:
            return None
        payment = sync_yookassa_payment(provider_payment_id=object_id)
        if payment is not None and payment.is_final:
            _final_yookassa_payments.add(object_id)
        return payment
    if event in REFUND_EVENTS:
        return sync_yookassa_refund(provider_refund_id=object_id)
    logger.info("YooKassa notification %s for %s ignored: not an event we act on", event, object_id)
    return None


# --- Telegram Stars ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StarsInvoice:
    """What ``sendInvoice`` / ``createInvoiceLink`` need (provider_token is empty for Stars)."""

    title: str
    description: str
    payload: str
    currency: str
    prices: list[dict] = field(default_factory=list)  # [{"label": str, "amount": stars}]
    provider_token: str = ""


def create_stars_topup(*, customer: Customer, stars: int) -> Payment:
    """A pending Stars payment crediting ``stars * STARS_RATE_KOPECKS`` kopecks when paid."""
    if isinstance(stars, bool) or not isinstance(stars, int) or stars <= 0:
        raise TopupAmountOutOfRange()
    amount = check_topup_amount(stars * settings.STARS_RATE_KOPECKS)
    _check_customer(customer)
    with transaction.atomic(durable=True):
        return Payment.objects.create(
            provider=Provider.STARS, customer=customer, amount=amount, stars_amount=stars
        )


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
    existing = _stars_payment_by_charge(telegram_payment_charge_id)
    if existing is not None:
        return existing
    if payment.status == PaymentStatus.PENDING:
        try:
            result = mark_payment_succeeded(payment=payment, provider_payment_id=telegram_payment_charge_id)
        except IntegrityError:
            # The same charge was recorded concurrently on another row.
            return _stars_payment_by_charge(telegram_payment_charge_id)
        if result.provider_payment_id == telegram_payment_charge_id:
            return result
    logger.warning("Stars invoice #%s paid again (charge %s): recorded as its own payment", payment.pk,
                   telegram_payment_charge_id)
    with transaction.atomic(durable=True):
        repeat = Payment.objects.create(
            provider=Provider.STARS, customer=payment.customer, amount=payment.amount,
            stars_amount=payment.stars_amount, metadata={"invoice_payment_id": payment.pk},
        )
    try:
        return mark_payment_succeeded(payment=repeat, provider_payment_id=telegram_payment_charge_id)
    except IntegrityError:
        mark_payment_canceled(payment=repeat, reason="duplicate charge")
        return _stars_payment_by_charge(telegram_payment_charge_id)


def _stars_payment_by_charge(charge_id: str) -> Payment | None:
    return Payment.objects.filter(provider=Provider.STARS, provider_payment_id=charge_id).first()


# --- refunds --------------------------------------------------------------------------------


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
    """The body of ``request_refund`` inside the caller's transaction (``payments.staff`` has its own)."""
    # The payment row lock serialises refunds of one payment (and double clicks).
    locked = Payment.objects.select_for_update().select_related("customer").get(pk=payment.pk)
    existing = Refund.objects.filter(idempotence_key=refund_key).first()
    if existing is not None:
        if existing.payment_id != locked.pk or existing.amount != amount:
            raise RefundRefused(_("This refund form was already used for another refund. Open it again."))
        return existing
    check_refundable(locked, amount)
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
        raise RefundExceedsBalance(
            _("The customer has already spent this money: %(available)s is left on the wallet, "
              "the refund needs %(required)s.")
            % {"available": format_amount(exc.available or 0), "required": format_amount(amount)}
        ) from exc
    Refund.objects.filter(pk=refund.pk).update(debit_transfer=transfer)
    refund.debit_transfer = transfer
    return refund


def check_refundable(payment: Payment, amount: int) -> None:
    """Refuse a refund of ``amount`` the payment cannot take (its status, what is left, Stars in full)."""
    if payment.status not in REFUNDABLE_STATUSES:
        raise PaymentNotRefundable()
    if amount > refundable_amount(payment):
        raise RefundExceedsPayment(
            _("At most %(amount)s of this payment can still be refunded.")
            % {"amount": format_amount(refundable_amount(payment))}
        )
    if payment.provider == Provider.STARS and amount != payment.amount:
        raise PartialStarsRefundNotSupported()


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
    except ProviderUnavailable:
        logger.warning("refund %s: provider unreachable; sync_payments will submit it again", refund.pk)
        return refund
    except ProviderRefused as exc:
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
        params["receipt"] = _receipt(amount=refund.amount, customer=receipt_customer, description=params["description"][:128])
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
        transaction.on_commit(
            lambda: _announce(refund_succeeded, sender=Refund, refund=current, payment=current.payment)
        )
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


# --- recovery -------------------------------------------------------------------------------


# At most this many payments (and refunds) per run; the next scheduled run takes the rest.
SYNC_BATCH = 500


@dataclass
class SyncReport:
    checked: int = 0
    succeeded: int = 0
    canceled: int = 0
    refunds_checked: int = 0
    errors: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _sync_failed(report: SyncReport, kind: str, pk: int) -> None:
    """Inside ``except``: an unexpected error on one item is logged with its traceback, counted
    (the report and /metrics' ``payments_sync_errors``) and the batch goes on; the item stays
    pending, so the next run tries it again."""
    logger.exception("sync_pending_payments: %s %s failed; skipped", kind, pk)
    report.errors += 1
    counters.count("payments_sync_errors")


def sync_pending_payments(*, older_than: timedelta | None = None) -> SyncReport:
    """Recover what lost notifications and crashes left behind; safe to run any time, concurrently.

    - YooKassa payments pending longer than ``older_than`` (PAYMENTS_SYNC_AFTER_MINUTES): ask
      the API and apply the same logic as the webhook; one that never got a provider id (the
      create call failed) is canceled: its customer never had a link to pay.
    - Stars invoices older than their TTL plus the sync delay are canceled (a late
      ``successful_payment`` is still credited, as its own row).
    - Pending refunds: submitted again (same Idempotence-Key) or asked about.
    """
    if older_than is None:
        older_than = timedelta(minutes=settings.PAYMENTS_SYNC_AFTER_MINUTES)
    cutoff = timezone.now() - older_than
    report = SyncReport()
    pending = Payment.objects.filter(status=PaymentStatus.PENDING, created_at__lt=cutoff)
    # Bounded batches, read up front: each item runs its own durable transaction.
    for payment in list(pending.filter(provider=Provider.YOOKASSA).order_by("pk")[:SYNC_BATCH]):
        report.checked += 1
        try:
            if payment.provider_payment_id is None:
                result = mark_payment_canceled(payment=payment, reason="not created at YooKassa")
            else:
                result = apply_remote_payment(payment=payment, remote=yookassa_client.fetch_payment(payment.provider_payment_id))
        except ProviderError:
            report.errors += 1
            continue
        except Exception:  # noqa: BLE001 - one broken payment must not stop the batch
            _sync_failed(report, "payment", payment.pk)
            continue
        report.succeeded += result.status == PaymentStatus.SUCCEEDED
        report.canceled += result.status == PaymentStatus.CANCELED
    stale_stars = timezone.now() - timedelta(seconds=settings.STARS_INVOICE_TTL_SECONDS) - older_than
    stale = pending.filter(provider=Provider.STARS, created_at__lt=stale_stars).order_by("pk")
    for payment in list(stale[:SYNC_BATCH]):
        report.checked += 1
        try:
            result = mark_payment_canceled(payment=payment, reason="invoice expired")
        except Exception:  # noqa: BLE001 - see above
            _sync_failed(report, "payment", payment.pk)
            continue
        report.canceled += result.status == PaymentStatus.CANCELED
    unfinished = Refund.objects.filter(status=RefundStatus.PENDING, created_at__lt=cutoff).order_by("pk")
    for refund in list(unfinished[:SYNC_BATCH]):
        report.refunds_checked += 1
        try:
            if refund.provider_refund_id:
                sync_yookassa_refund(provider_refund_id=refund.provider_refund_id)
            else:
                submit_refund(refund=refund)
        except ProviderError:
            report.errors += 1
        except Exception:  # noqa: BLE001 - see above
            _sync_failed(report, "refund", refund.pk)
    if report.checked or report.refunds_checked:
        logger.info("sync_pending_payments: %s", report.as_dict())
    return report
