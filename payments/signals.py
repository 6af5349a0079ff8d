"""What payments tells the rest of the system. The bot subscribes (telegram_bot/receivers.py)
and tells the customer; payments never imports it.

Each signal is sent INSIDE the transaction that changed the payment or refund (the transactional
outbox, like ``jobs.signals.job_finished``): what a receiver writes to the database (the bot's
message in its outbox) commits with the change or not at all, so no committed payment loses its
message to a crash. Receivers run in one savepoint (``billing.signals.send_in_transaction``);
if one raises, the savepoint is rolled back (every receiver's writes with it) and the failure
logged, and the change stays. A receiver with effects outside the database (a network call)
must defer them with ``transaction.on_commit``.
"""
from django.dispatch import Signal

# sender=Payment, payment=<Payment>, balance=<int | None>: the wallet was credited; balance is its
# available kopecks right after the credit (None when not known).
payment_succeeded = Signal()
# sender=Payment, payment=<Payment>: the provider canceled it (declined, expired).
payment_canceled = Signal()
# sender=Refund, refund=<Refund>, payment=<Payment>: the provider returned the money.
refund_succeeded = Signal()
