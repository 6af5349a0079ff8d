"""What billing announces. The bot subscribes (telegram_bot/receivers.py); billing imports no other app.

- ``balance_adjusted(sender=BalanceAdjustment, adjustment=...)``: a staff adjustment moved a
  wallet (``adjustment.amount`` signed, ``adjustment.customer_reason`` fit to show the customer;
  ``adjustment.note`` is staff-only and never shown). Sent INSIDE the transaction that wrote the
  ledger row, like ``jobs.signals.job_finished``: what receivers write (the customer's message in
  the outbox) commits with the money or not at all. Receivers run in a savepoint; one that
  raises has its writes rolled back and is logged, and the adjustment stays.
"""
import django.dispatch
from django.db import transaction

balance_adjusted = django.dispatch.Signal()


class _ReceiverFailed(Exception):
    pass


def send_in_transaction(signal, *, logger, **kwargs) -> None:
    """Send ``signal`` in the caller's transaction; a failing receiver's writes are rolled back and logged."""
    try:
        with transaction.atomic():
            for receiver, outcome in signal.send_robust(**kwargs):
                if isinstance(outcome, Exception):
                    logger.error("%s receiver %r failed", kwargs.get("sender"), receiver, exc_info=outcome)
                    raise _ReceiverFailed
    except _ReceiverFailed:
        pass
