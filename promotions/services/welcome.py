"""The welcome bonus: WELCOME_BONUS_KOPECKS once per Telegram id, on the first /start."""
from __future__ import annotations

from django.conf import settings
from django.db import transaction

from billing.models import Customer, Transfer

from .. import selectors
from .ledger import announce_credit, credit_bonus

WELCOME = "welcome"


def grant_welcome_bonus(*, customer: Customer) -> Transfer | None:
    """Credit the welcome bonus (key ``welcome:<telegram id>``) to a new customer, once.

    The transfer when THIS call credited it; None when it is off (0), the customer is not new
    (``selectors.is_new_customer``) or it was credited before. However many /starts arrive at
    once, the key lets one credit through: the others wait on the wallet lock and replay it.
    """
    amount = settings.WELCOME_BONUS_KOPECKS
    if amount <= 0 or not selectors.is_new_customer(customer):
        return None
    with transaction.atomic(durable=True):
        transfer = credit_bonus(
            customer=customer, amount=amount, idempotency_key=f"welcome:{customer.telegram_id}", kind=WELCOME,
            description="Welcome bonus",
        )
        if transfer is not None:
            announce_credit(sender=Customer, transfer=transfer, customer=customer, kind=WELCOME)
    return transfer
