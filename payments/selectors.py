"""Reads of payments that more than one place needs."""
from __future__ import annotations

from django.db import connection
from django.db.models import Sum

from billing.models import Customer

from .models import Payment, RefundStatus


def refundable_amount(payment: Payment) -> int:
    """What can still be refunded: the amount less succeeded and pending refunds."""
    pending = payment.refunds.filter(status=RefundStatus.PENDING).aggregate(total=Sum("amount"))["total"] or 0
    return payment.amount - payment.refunded_amount - pending


# What acting on a notification reads: the payment's state and terms, and who to credit and tell.
# Plain values on every database (no converters needed), so rows load with ``from_db``; any other
# field is deferred and loads on first access.
def _in_model_order(model, names: set[str]) -> tuple[str, ...]:
    # ``from_db`` takes the values in the order of the model's fields.
    return tuple(f.attname for f in model._meta.concrete_fields if f.attname in names)


_NOTIFIED_PAYMENT_FIELDS = _in_model_order(Payment, {"id", "provider", "provider_payment_id", "customer_id", "amount", "status"})
_NOTIFIED_CUSTOMER_FIELDS = _in_model_order(Customer, {"id", "telegram_id", "language"})


def _notified_payment_sql() -> str:
    p, c = Payment._meta, Customer._meta
    columns = [f'p."{p.get_field(name).column}"' for name in _NOTIFIED_PAYMENT_FIELDS]
    columns += [f'c."{c.get_field(name).column}"' for name in _NOTIFIED_CUSTOMER_FIELDS]
    return (
        f'SELECT {", ".join(columns)} FROM "{p.db_table}" p '
        f'JOIN "{c.db_table}" c ON c."{c.pk.column}" = p."{p.get_field("customer").column}" '
        f'WHERE p."{p.get_field("provider").column}" = %s AND p."{p.get_field("provider_payment_id").column}" = %s'
    )


_NOTIFIED_PAYMENT_SQL = _notified_payment_sql()


def payment_for_notification(*, provider: str, provider_payment_id: str) -> Payment | None:
    """Our payment with this provider id, with its customer, or None when it is not ours.

    One read through the unique (provider, provider id) index, in SQL written once: the webhook
    asks this about every notification it has not answered before, and most of them only need
    the status (a repeat about a final payment), which the ORM would spend several times the
    read itself building the query for. Loads the fields acting on a notification uses; any
    other loads when first touched.
    """
    with connection.cursor() as cursor:
        cursor.execute(_NOTIFIED_PAYMENT_SQL, [provider, provider_payment_id])
        row = cursor.fetchone()
    if row is None:
        return None
    split = len(_NOTIFIED_PAYMENT_FIELDS)
    payment = Payment.from_db(connection.alias, _NOTIFIED_PAYMENT_FIELDS, row[:split])
    payment.customer = Customer.from_db(connection.alias, _NOTIFIED_CUSTOMER_FIELDS, row[split:])
    return payment
