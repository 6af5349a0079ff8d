"""Every write to payments goes through here; one module per topic, every public name here too.

- ``topups``: starting a top-up (YooKassa or Stars) and its two endings for every provider,
  ``mark_payment_succeeded`` (the credit, once) and ``mark_payment_canceled``.
- ``yookassa``: notifications and what the YooKassa API says about a payment.
- ``stars``: Telegram Stars invoices, the pre-checkout answer, the credit of a charge.
- ``refunds``: the refund state machine (the wallet debit first, then the provider).
- ``sync``: ``sync_pending_payments``, the recovery run on a schedule.

Staff refunds, with their limits and four eyes, are ``payments.staff``.
"""
from .refunds import (
    apply_remote_refund,
    check_refundable,
    complete_refund,
    fail_refund,
    refund_payment,
    request_refund,
    request_refund_locked,
    submit_refund,
    sync_yookassa_refund,
)
from .stars import (
    STARS_CURRENCY,
    StarsInvoice,
    build_stars_invoice,
    confirm_stars_payment,
    stars_invoice_payload,
    validate_pre_checkout,
)
from .sync import SYNC_BATCH, SyncReport, sync_pending_payments
from .topups import (
    YOOKASSA_CURRENCY,
    build_receipt,
    check_topup_amount,
    create_stars_topup,
    create_topup,
    mark_payment_canceled,
    mark_payment_succeeded,
)
from .yookassa import PAYMENT_EVENTS, REFUND_EVENTS, apply_remote_payment, handle_yookassa_notification, sync_yookassa_payment

__all__ = [
    "PAYMENT_EVENTS",
    "REFUND_EVENTS",
    "STARS_CURRENCY",
    "SYNC_BATCH",
    "YOOKASSA_CURRENCY",
    "StarsInvoice",
    "SyncReport",
    "apply_remote_payment",
    "apply_remote_refund",
    "build_receipt",
    "build_stars_invoice",
    "check_refundable",
    "check_topup_amount",
    "complete_refund",
    "confirm_stars_payment",
    "create_stars_topup",
    "create_topup",
    "fail_refund",
    "handle_yookassa_notification",
    "mark_payment_canceled",
    "mark_payment_succeeded",
    "refund_payment",
    "request_refund",
    "request_refund_locked",
    "stars_invoice_payload",
    "submit_refund",
    "sync_pending_payments",
    "sync_yookassa_payment",
    "sync_yookassa_refund",
    "validate_pre_checkout",
]
