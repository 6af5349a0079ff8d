"""Referrals: a new customer who starts through a link is attributed to its owner, once and for good."""
from __future__ import annotations

import logging

from django.db import IntegrityError, transaction

from billing.models import Customer
from billing.signals import send_in_transaction

from .. import selectors
from ..models import Referral
from ..signals import referral_attributed

logger = logging.getLogger("promotions")


def attribute_referral(*, customer: Customer, code: str) -> Referral | None:
    """Attribute ``customer`` to the owner of referral ``code``; None (silently) when it cannot be.

    Refused: an unknown or forged code, the customer's own, a customer who is not new
    (``selectors.is_new_customer``), one who already has a referrer. ``Referral.referee`` is
    UNIQUE, so two links followed at once resolve in the database: the first insert wins.
    """
    referrer = selectors.customer_by_referral_code(code)
    if referrer is None or referrer.pk == customer.pk or not selectors.is_new_customer(customer):
        return None
    if Referral.objects.filter(referee=customer).exists():
        return None
    with transaction.atomic(durable=True):
        try:
            with transaction.atomic():
                referral = Referral.objects.create(referrer=referrer, referee=customer)
        except IntegrityError:
            return None  # attributed meanwhile
        send_in_transaction(referral_attributed, logger=logger, sender=Referral, referral=referral)
    logger.info("customer %s attributed to referrer %s", customer.pk, referrer.pk)
    return referral
