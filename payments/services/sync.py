"""Recovery: what lost notifications and crashes left behind (``sync_pending_payments``)."""
from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from genbot import counters
from genbot.tally import Tally

from .. import yookassa_client
from ..exceptions import PaymentProviderError
from ..models import Payment, PaymentStatus, Provider, Refund, RefundStatus
from .refunds import submit_refund, sync_yookassa_refund
from .topups import mark_payment_canceled
from .yookassa import apply_remote_payment

logger = logging.getLogger(__name__)


# At most this many payments (and refunds) per run; the next scheduled run takes the rest.
SYNC_BATCH = 500


class SyncReport(Tally):
    counts = ("checked", "succeeded", "canceled", "refunds_checked", "errors")


def _sync_failed(report: SyncReport, kind: str, pk: int) -> None:
    """Inside ``except``: an unexpected error on one item is logged with its traceback, counted
    (the report and /metrics' ``payments_sync_errors``) and the batch goes on; the item stays
    pending, so the next run tries it again."""
    logger.exception("sync_pending_payments: %s %s failed; skipped", kind, pk)
    report.errors += 1
    counters.count("payments_sync_errors")


def sync_pending_payments(*, older_than: timedelta | None = None) -> SyncReport:
    """Recover what lost notifications and crashes left behind; safe to run any time, concurrently.

    - YooKassa payments pending longer than ``older_than`` (PAYMENTS_SYNC_AFTER_MINUTES): ask
      the API and apply the same logic as the webhook; one that never got a provider id (the
      create call failed) is canceled: its customer never had a link to pay.
    - Stars invoices older than their TTL plus the sync delay are canceled (a late
      ``successful_payment`` is still credited, as its own row).
    - Pending refunds: submitted again (same Idempotence-Key) or asked about.
    """
    if older_than is None:
        older_than = timedelta(minutes=settings.PAYMENTS_SYNC_AFTER_MINUTES)
    cutoff = timezone.now() - older_than
    report = SyncReport()
    pending = Payment.objects.filter(status=PaymentStatus.PENDING, created_at__lt=cutoff)
    # Bounded batches, read up front: each item runs its own durable transaction.
    for payment in list(pending.filter(provider=Provider.YOOKASSA).order_by("pk")[:SYNC_BATCH]):
        report.checked += 1
        try:
            if payment.provider_payment_id is None:
                result = mark_payment_canceled(payment=payment, reason="not created at YooKassa")
            else:
                result = apply_remote_payment(payment=payment, remote=yookassa_client.fetch_payment(payment.provider_payment_id))
        except PaymentProviderError:
            report.errors += 1
            continue
        except Exception:  # noqa: BLE001 - one broken payment must not stop the batch
            _sync_failed(report, "payment", payment.pk)
            continue
        report.succeeded += result.status == PaymentStatus.SUCCEEDED
        report.canceled += result.status == PaymentStatus.CANCELED
    stale_stars = timezone.now() - timedelta(seconds=settings.STARS_INVOICE_TTL_SECONDS) - older_than
    stale = pending.filter(provider=Provider.STARS, created_at__lt=stale_stars).order_by("pk")
    for payment in list(stale[:SYNC_BATCH]):
        report.checked += 1
        try:
            result = mark_payment_canceled(payment=payment, reason="invoice expired")
        except Exception:  # noqa: BLE001 - see above
            _sync_failed(report, "payment", payment.pk)
            continue
        report.canceled += result.status == PaymentStatus.CANCELED
    unfinished = Refund.objects.filter(status=RefundStatus.PENDING, created_at__lt=cutoff).order_by("pk")
    for refund in list(unfinished[:SYNC_BATCH]):
        report.refunds_checked += 1
        try:
            if refund.provider_refund_id:
                sync_yookassa_refund(provider_refund_id=refund.provider_refund_id)
            else:
                submit_refund(refund=refund)
        except PaymentProviderError:
            report.errors += 1
        except Exception:  # noqa: BLE001 - see above
            _sync_failed(report, "refund", refund.pk)
    if report.checked or report.refunds_checked:
        logger.info("sync_pending_payments: %s", report.as_dict())
    return report
