"""What payments tells the rest of the system; sent with ``transaction.on_commit``.

The bot subscribes (telegram_bot/receivers.py) and tells the customer; payments never imports it.
"""
from django.dispatch import Signal

# sender=Payment, payment=<Payment>, balance=<int | None>: the wallet was credited; balance is its
# available kopecks right after the credit (None when not known).
payment_succeeded = Signal()
# sender=Payment, payment=<Payment>: the provider canceled it (declined, expired).
payment_canceled = Signal()
# sender=Refund, refund=<Refund>, payment=<Payment>: the provider returned the money.
refund_succeeded = Signal()
