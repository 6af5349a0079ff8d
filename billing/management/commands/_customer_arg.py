"""Shared parsing for commands that take a TELEGRAM_ID."""
from django.core.management.base import CommandError

from billing.models import Customer


def customer_from_arg(value: str) -> Customer:
    try:
        telegram_id = int(value)
    except ValueError:
        raise CommandError(f"TELEGRAM_ID must be a number, not {value!r}") from None
    customer = Customer.objects.filter(telegram_id=telegram_id).first()
    if customer is None:
        raise CommandError(f"No customer with Telegram id {telegram_id}")
    return customer
