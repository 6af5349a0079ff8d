"""Staff refunds: the rules live here (limits, four eyes, server-made keys), the admin only renders.

``staff_refund_payment`` checks the acting member's limits (``billing.policy``): within them
the Refund row and the wallet debit are written in one durable transaction and the provider is
asked after the commit (``services.submit_refund``); above them the request waits for a
superuser (``approve_staff_refund``, or ``billing.staff.reject_staff_request``).

Lock contract: the acting member's user row, then the payment row, then the wallet (deciding:
the request row, then the payment, then the wallet).
"""
from __future__ import annotations

import logging

from django.db import transaction
from django.utils.translation import gettext as _

from billing.exceptions import StaffLimitExceeded
from billing.models import StaffRequestStatus
from billing.money import check_kopecks
from billing.policy import check_staff_money_action, lock_staff_member
from billing.staff import lock_pending, record_decision
from billing.staff_keys import REFUND_NAMESPACE, check_staff_key, key_uuid

from . import services
from .exceptions import RefundRefused
from .models import Payment, Refund, RefundRequest

logger = logging.getLogger(__name__)


def staff_refund_payment(
    *, acting_user, payment: Payment, amount: int, reason: str = "", note: str = "", idempotency_key: str
) -> RefundRequest:
    """Refund ``amount`` kopecks of ``payment`` for ``acting_user``, or save it for a superuser.

    Done: ``request.refund`` is the Refund (succeeded, pending at the provider, or failed).
    Pending: nothing moved; ``limit_message`` says why. The same key returns the same request.
    """
    check_kopecks(amount)
    check_staff_key(idempotency_key, REFUND_NAMESPACE)
    with transaction.atomic(durable=True):
        lock_staff_member(acting_user)
        existing = RefundRequest.objects.filter(idempotency_key=idempotency_key).select_related("refund").first()
        if existing is not None:
            if existing.payment_id != payment.pk or existing.amount != amount:
                raise RefundRefused(_("This refund form was already used for another refund. Open it again."))
            request = existing
        else:
            request = _new_request(
                acting_user=acting_user, payment=payment, amount=amount, reason=reason, note=note,
                idempotency_key=idempotency_key,
            )
    if request.refund is not None:
        request.refund = services.submit_refund(refund=request.refund)
    return request


def _new_request(*, acting_user, payment: Payment, amount: int, reason: str, note: str, idempotency_key: str):
    fields = dict(
        payment=payment, amount=amount, reason=(reason or "").strip()[:255], note=(note or "").strip()[:255],
        idempotency_key=idempotency_key, requested_by=acting_user,
    )
    try:
        check_staff_money_action(acting_user=acting_user, amount=amount)
    except StaffLimitExceeded as exc:
        # Refuse now what a superuser could not approve either.
        services.check_refundable(Payment.objects.get(pk=payment.pk), amount)
        request = RefundRequest.objects.create(status=StaffRequestStatus.PENDING, **fields)
        request.limit_message = str(exc)
        logger.info("refund request #%s by %s waits for a superuser: %s", request.pk, acting_user.pk, exc)
        return request
    refund = _refund(payment=payment, amount=amount, idempotency_key=idempotency_key, staff_user=acting_user,
                     reason=fields["reason"])
    return RefundRequest.objects.create(status=StaffRequestStatus.DONE, refund=refund, **fields)


def approve_staff_refund(*, acting_user, request: RefundRequest) -> RefundRequest:
    """A superuser (not the requester) executes a pending refund request, under its own key: once."""
    with transaction.atomic(durable=True):
        locked = lock_pending(acting_user=acting_user, request=request)
        locked.refund = _refund(
            payment=locked.payment, amount=locked.amount, idempotency_key=locked.idempotency_key,
            staff_user=acting_user, reason=locked.reason,
        )
        record_decision(locked, acting_user=acting_user, status=StaffRequestStatus.DONE, extra_fields=["refund"])
    locked.refund = services.submit_refund(refund=locked.refund)
    return locked


def _refund(*, payment: Payment, amount: int, idempotency_key: str, staff_user, reason: str) -> Refund:
    # The key's UUID is the Refund's Idempotence-Key at the provider: one form, one refund there.
    return services.request_refund_locked(
        payment=payment, amount=amount, refund_key=key_uuid(idempotency_key, REFUND_NAMESPACE),
        staff_user=staff_user, reason=reason,
    )
