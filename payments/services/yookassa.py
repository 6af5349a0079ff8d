"""YooKassa: what its notifications and its API say about our payments.

- A notification's body is never trusted: it only names a payment, and we ask the API
  (``yookassa_client.fetch_payment``) what happened to it.
- A payment that is already final answers at once, without asking the API again (a process
  remembers the ones it has seen final; otherwise one indexed read tells).
"""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict

from .. import yookassa_client
from ..models import Payment, Provider, Refund
from ..selectors import payment_for_notification
from ..yookassa_client import RemotePayment
from .refunds import sync_yookassa_refund
from .topups import YOOKASSA_CURRENCY, mark_payment_canceled, mark_payment_succeeded

logger = logging.getLogger(__name__)

# Events whose object is a payment: each makes us ask the API about that payment.
PAYMENT_EVENTS = frozenset({"payment.succeeded", "payment.canceled", "payment.waiting_for_capture"})
REFUND_EVENTS = frozenset({"refund.succeeded"})


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

    Returns what it touched (None: nothing to do, or not ours). Raises PaymentProviderError when the
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


