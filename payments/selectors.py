"""Reads of payments that more than one place needs."""
from django.db.models import Sum

from .models import Payment, RefundStatus


def refundable_amount(payment: Payment) -> int:
    """What can still be refunded: the amount less succeeded and pending refunds."""
    pending = payment.refunds.filter(status=RefundStatus.PENDING).aggregate(total=Sum("amount"))["total"] or 0
    return payment.amount - payment.refunded_amount - pending
