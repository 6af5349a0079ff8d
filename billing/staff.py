"""Staff balance adjustments: the rules live here, the admin only parses and renders.

``staff_adjust_balance`` checks the acting member's limits (``billing.policy``) and either
moves the money at once or saves the request as pending for a superuser
(``approve_staff_adjustment`` / ``reject_staff_request``). The states are in
``billing.models.StaffMoneyRequest``.

Lock contract: the acting member's user row first (``policy.lock_staff_member``: one member's
actions queue up and each sees the daily total of the one before), then the wallet
(``services.adjust_balance``). Deciding locks the request row, then the wallet.
"""
from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from . import services
from .exceptions import IdempotencyConflict, StaffDecisionRefused, StaffLimitExceeded, StaffRequestAlreadyDecided
from .models import BalanceAdjustment, Customer, StaffMoneyRequest, StaffRequestStatus
from .policy import check_staff_money_action, lock_staff_member
from .signals import balance_adjusted, send_in_transaction
from .staff_keys import ADJUST_NAMESPACE, check_staff_key

logger = logging.getLogger(__name__)


def staff_adjust_balance(
    *, acting_user, customer: Customer, amount: int, reason: str, note: str = "", idempotency_key: str
) -> BalanceAdjustment:
    """Adjust ``customer``'s wallet by ``amount`` kopecks (signed) for ``acting_user``; one durable transaction.

    ``reason`` is told to the customer; ``note`` is for staff only. Within the member's limits
    the money moves now (status done, the customer is told); above them nothing moves and the
    request waits for a superuser (status pending; ``limit_message`` says why). The same key
    returns the same adjustment.
    """
    reason = services.check_correction(amount=amount, reason=reason)
    check_staff_key(idempotency_key, ADJUST_NAMESPACE)
    note = (note or "").strip()[:255]
    with transaction.atomic(durable=True):
        lock_staff_member(acting_user)
        existing = BalanceAdjustment.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            if existing.customer_id != customer.pk or existing.amount != amount:
                raise IdempotencyConflict()
            return existing
        fields = dict(
            customer=customer, amount=amount, customer_reason=reason[:255], note=note,
            idempotency_key=idempotency_key, requested_by=acting_user,
        )
        try:
            check_staff_money_action(acting_user=acting_user, amount=amount)
        except StaffLimitExceeded as exc:
            adjustment = BalanceAdjustment.objects.create(status=StaffRequestStatus.PENDING, **fields)
            adjustment.limit_message = str(exc)
            logger.info("adjustment #%s by %s waits for a superuser: %s", adjustment.pk, acting_user.pk, exc)
            return adjustment
        transfer = _move(adjustment_key=idempotency_key, customer=customer, amount=amount, reason=reason,
                         staff_user=acting_user)
        adjustment = BalanceAdjustment.objects.create(status=StaffRequestStatus.DONE, transfer=transfer, **fields)
        _announce(adjustment)
    return adjustment


def approve_staff_adjustment(*, acting_user, request: BalanceAdjustment) -> BalanceAdjustment:
    """A superuser (not the requester) executes a pending adjustment, under its own key: once."""
    with transaction.atomic(durable=True):
        locked = lock_pending(acting_user=acting_user, request=request)
        transfer = _move(
            adjustment_key=locked.idempotency_key, customer=locked.customer, amount=locked.amount,
            reason=locked.customer_reason, staff_user=acting_user,
        )
        locked.transfer = transfer
        record_decision(locked, acting_user=acting_user, status=StaffRequestStatus.DONE, extra_fields=["transfer"])
        _announce(locked)
    return locked


def reject_staff_request(*, acting_user, request: StaffMoneyRequest) -> StaffMoneyRequest:
    """A superuser (not the requester) refuses a pending request (an adjustment or a refund); nothing moves."""
    with transaction.atomic(durable=True):
        locked = lock_pending(acting_user=acting_user, request=request)
        record_decision(locked, acting_user=acting_user, status=StaffRequestStatus.REJECTED)
    return locked


def check_can_decide(*, acting_user, request: StaffMoneyRequest) -> None:
    if acting_user is None or not acting_user.is_superuser or acting_user.pk == request.requested_by_id:
        raise StaffDecisionRefused()


def lock_pending(*, acting_user, request: StaffMoneyRequest) -> StaffMoneyRequest:
    """The request's row, locked, if ``acting_user`` may decide it and it is still pending (expects a transaction)."""
    check_can_decide(acting_user=acting_user, request=request)
    locked = type(request).objects.select_for_update().get(pk=request.pk)
    if locked.status != StaffRequestStatus.PENDING:
        raise StaffRequestAlreadyDecided()
    return locked


def record_decision(request: StaffMoneyRequest, *, acting_user, status: str, extra_fields: list[str] = ()) -> None:
    request.status = status
    request.decided_by = acting_user
    request.decided_at = timezone.now()
    request.save(update_fields=["status", "decided_by", "decided_at", *extra_fields])


def _move(*, adjustment_key: str, customer: Customer, amount: int, reason: str, staff_user):
    # The ledger row's description is the reason the customer was told (their /history names the
    # line "Correction by support"), never the staff note.
    return services.adjust_balance(
        customer=customer, amount=amount, idempotency_key=adjustment_key, staff_user=staff_user, reason=reason
    )


def _announce(adjustment: BalanceAdjustment) -> None:
    send_in_transaction(balance_adjusted, logger=logger, sender=BalanceAdjustment, adjustment=adjustment)
