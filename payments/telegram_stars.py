"""The one Bot API call payments makes itself: ``refundStarPayment``.

Payments never imports telegram_bot (dependencies point the other way), and it must not change
``telebot.apihelper.API_URL`` under the bot's feet, so this is a plain ``requests`` call to
``{TELEGRAM_API_URL}/bot<token>/refundStarPayment`` (the real Bot API or the local sandbox).
"""
from __future__ import annotations

import logging

import requests
from django.conf import settings

from .exceptions import PaymentProviderRefused, PaymentProviderUnavailable

logger = logging.getLogger(__name__)

REFUND_TIMEOUT_SECONDS = 15

# Telegram's answer when the charge was refunded before (a retry after a crash): the money is
# back with the customer, which is what we asked for.
ALREADY_REFUNDED = "CHARGE_ALREADY_REFUNDED"


def refund_star_payment(*, user_id: int, telegram_payment_charge_id: str) -> None:
    """Ask Telegram to return the Stars; raise PaymentProviderUnavailable (retry) or PaymentProviderRefused."""
    url = f"{settings.TELEGRAM_API_URL}/bot{settings.BOT_TOKEN}/refundStarPayment"
    try:
        response = requests.post(
            url,
            json={"user_id": user_id, "telegram_payment_charge_id": telegram_payment_charge_id},
            timeout=REFUND_TIMEOUT_SECONDS,
        )
    except requests.RequestException as exc:
        logger.warning("refundStarPayment unreachable: %r", exc)
        raise PaymentProviderUnavailable() from exc
    if response.status_code == 429 or response.status_code >= 500:
        raise PaymentProviderUnavailable()
    try:
        body = response.json()
    except ValueError as exc:
        raise PaymentProviderUnavailable() from exc
    if body.get("ok"):
        return
    description = str(body.get("description", ""))
    if ALREADY_REFUNDED in description:
        logger.info("Stars charge %s was already refunded", telegram_payment_charge_id)
        return
    logger.warning("refundStarPayment refused: %s", description)
    refused = PaymentProviderRefused()
    refused.detail = description
    raise refused
