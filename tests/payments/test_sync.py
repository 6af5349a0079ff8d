"""sync_payments: lost notifications are recovered with the same logic as the webhook."""
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from billing import selectors
from payments import services, tasks
from payments.models import Payment, PaymentStatus
from tests.helpers import make_customer

pytestmark = pytest.mark.django_db


def age(payment, minutes):
    Payment.objects.filter(pk=payment.pk).update(created_at=timezone.now() - timedelta(minutes=minutes))


def test_a_lost_succeeded_notification_is_recovered_by_sync_payments(yookassa_stub, settings, books_balance):
    settings.PAYMENTS_SYNC_AFTER_MINUTES = 10
    customer = make_customer()
    payment = services.create_topup(customer=customer, amount=50_000, provider="yookassa")
    yookassa_stub.mark_succeeded(payment.provider_payment_id, notify=False)  # the notification is lost
    age(payment, 11)
    result = tasks.sync_pending_payments()
    assert result["succeeded"] == 1
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert selectors.get_balance(customer) == 50_000
    # Running again (or the late notification) credits nothing more.
    tasks.sync_pending_payments()
    services.sync_yookassa_payment(provider_payment_id=payment.provider_payment_id)
    assert selectors.get_balance(customer) == 50_000
    books_balance()


def test_sync_leaves_young_payments_alone_and_does_not_ask_the_api(yookassa_stub, settings):
    settings.PAYMENTS_SYNC_AFTER_MINUTES = 10
    payment = services.create_topup(customer=make_customer(), amount=50_000, provider="yookassa")
    yookassa_stub.mark_succeeded(payment.provider_payment_id, notify=False)
    tasks.sync_pending_payments()
    assert yookassa_stub.calls[("GET", "/v3/payments")] == 0
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.PENDING


def test_sync_marks_canceled_what_the_api_says_is_canceled_and_keeps_pending_what_is_pending(yookassa_stub):
    customer = make_customer()
    canceled = services.create_topup(customer=customer, amount=10_000, provider="yookassa")
    waiting = services.create_topup(customer=customer, amount=10_000, provider="yookassa")
    yookassa_stub.mark_canceled(canceled.provider_payment_id, notify=False)
    call_command("sync_payments", older_than=0)
    assert Payment.objects.get(pk=canceled.pk).status == PaymentStatus.CANCELED
    assert Payment.objects.get(pk=waiting.pk).status == PaymentStatus.PENDING
    assert selectors.get_balance(customer) == 0


def test_an_api_outage_during_sync_is_counted_and_retried_next_time(yookassa_stub):
    customer = make_customer()
    payment = services.create_topup(customer=customer, amount=10_000, provider="yookassa")
    yookassa_stub.mark_succeeded(payment.provider_payment_id, notify=False)
    yookassa_stub.fail_next(1)
    report = services.sync_pending_payments(older_than=timedelta(0))
    assert report.errors == 1
    assert selectors.get_balance(customer) == 0
    services.sync_pending_payments(older_than=timedelta(0))
    assert selectors.get_balance(customer) == 10_000


@pytest.mark.django_db(transaction=True)
def test_sync_racing_notifications_still_credits_once(yookassa_stub, books_balance):
    from tests.helpers import run_concurrently

    customer = make_customer()
    payment = services.create_topup(customer=customer, amount=30_000, provider="yookassa")
    yookassa_stub.mark_succeeded(payment.provider_payment_id, notify=False)

    def actor(i):
        if i % 2:
            return services.sync_pending_payments(older_than=timedelta(0)).errors
        services.handle_yookassa_notification(event="payment.succeeded", object_id=payment.provider_payment_id)
        return 0

    results = run_concurrently(actor, 10)
    assert results == [("ok", 0)] * 10
    assert selectors.get_balance(customer) == 30_000
    books_balance()


def test_one_payment_that_raises_is_logged_counted_and_skipped_and_the_batch_goes_on(
    yookassa_stub, monkeypatch, caplog, capsys
):
    from genbot import counters
    from payments import yookassa_client

    customer = make_customer()
    first, broken, last = (services.create_topup(customer=customer, amount=10_000, provider="yookassa") for _ in range(3))
    for payment in (first, broken, last):
        yookassa_stub.mark_succeeded(payment.provider_payment_id, notify=False)
    real_fetch = yookassa_client.fetch_payment

    def fetch(payment_id):
        if payment_id == broken.provider_payment_id:
            raise KeyError("a field the SDK did not expect")
        return real_fetch(payment_id)

    monkeypatch.setattr(yookassa_client, "fetch_payment", fetch)
    counted = []
    monkeypatch.setattr(counters, "count", lambda name, amount=1: counted.append((name, amount)))
    call_command("sync_payments", older_than=0)
    assert [Payment.objects.get(pk=p.pk).status for p in (first, broken, last)] == [
        PaymentStatus.SUCCEEDED, PaymentStatus.PENDING, PaymentStatus.SUCCEEDED,
    ]
    assert selectors.get_balance(customer) == 20_000
    assert counted == [("payments_sync_errors", 1)]
    [failure] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert f"payment {broken.pk} failed" in failure.getMessage()
    assert failure.exc_info[0] is KeyError
    out = capsys.readouterr()
    assert "checked=3, succeeded=2, canceled=0, refunds_checked=0, errors=1" in out.out
    assert "1 could not be synced" in out.err


def test_one_refund_that_raises_is_skipped_and_the_other_refunds_still_run(yookassa_stub, paid_topup, monkeypatch):
    from payments.models import Refund, RefundStatus

    customer = make_customer()
    payment = paid_topup(customer, amount=30_000)
    # Step 1 only: three pending refunds that sync submits (as after a crash before step 2).
    refunds = [
        services.request_refund(payment=payment, amount=5_000, idempotency_key=uuid.uuid4()) for _ in range(3)
    ]
    real_submit = services.submit_refund

    def submit(*, refund):
        if refund.pk == refunds[1].pk:
            raise RuntimeError("boom")
        return real_submit(refund=refund)

    monkeypatch.setattr("payments.services.sync.submit_refund", submit)
    report = services.sync_pending_payments(older_than=timedelta(0))
    assert report.errors == 1
    assert [Refund.objects.get(pk=r.pk).status for r in refunds] == [
        RefundStatus.SUCCEEDED, RefundStatus.PENDING, RefundStatus.SUCCEEDED,
    ]
