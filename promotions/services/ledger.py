"""The one way promotions puts bonus money in a wallet and says so."""
from __future__ import annotations

import logging

from billing import services as billing
from billing.models import Customer, Transfer
from billing.signals import send_in_transaction

from ..signals import bonus_credited

logger = logging.getLogger("promotions")


def credit_bonus(
    *, customer: Customer, amount: int, idempotency_key: str, kind: str, description: str
) -> Transfer | None:
    """Credit a bonus from the ``bonus`` account under ``idempotency_key`` (source ``kind``).

    The transfer when THIS call credited it; None when the key was used before (nothing moved,
    and the caller records nothing: its row exists already). Expects the caller's transaction.
    """
    if Transfer.objects.filter(idempotency_key=idempotency_key).exists():
        # Credited before: nothing to do, and a bonus setting changed since (another amount under
        # the same key) must not turn a repeat into an IdempotencyConflict.
        return None
    transfer = billing.credit_balance(
        customer=customer, amount=amount, idempotency_key=idempotency_key, source=kind, description=description
    )
    return transfer if transfer.available_after is not None else None


def announce_credit(*, sender, transfer: Transfer, customer: Customer, kind: str, payment=None) -> None:
    send_in_transaction(
        bonus_credited, logger=logger, sender=sender, customer=customer, amount=transfer.amount, kind=kind,
        balance=transfer.available_after, payment=payment,
    )
