"""Starting a top-up with the package bonus it will get, fixed when it starts."""
from __future__ import annotations

from billing.models import Customer
from payments import services as payments
from payments.models import Payment, Provider

from .. import selectors
from ..selectors import BONUS_PERCENT


def start_topup(
    *, customer: Customer, amount: int, provider: str = Provider.YOOKASSA, email: str = "", phone: str = ""
) -> Payment:
    """``payments.services.create_topup`` with the package bonus of ``amount`` as it is now.

    The percent (``selectors.package_bonus_percent``) is kept in the Payment's metadata, written
    with the row: staff changing the packages later never changes what a started top-up gets.
    """
    return payments.create_topup(
        customer=customer, amount=amount, provider=provider, email=email, phone=phone,
        metadata={BONUS_PERCENT: selectors.package_bonus_percent(amount)},
    )
