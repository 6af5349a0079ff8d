"""What payments announce is written inside the transaction that changes the payment (the outbox).

No committed payment loses its message: a process that dies right after the commit (its
on-commit callbacks never run) has written it already; one that dies before the commit leaves
neither the credit nor the message; a receiver that fails is rolled back and logged, the
payment stays.
"""
import logging
import uuid

import pytest

from billing import selectors
from billing.models import Transfer
from payments import services
from payments.models import Payment, PaymentStatus
from payments.signals import payment_canceled, payment_succeeded, refund_succeeded
from telegram_bot.models import OutboxMessage
from tests.helpers import make_customer

pytestmark = pytest.mark.django_db


class Crash(BaseException):
    """The process going away mid-transaction: nothing catches it on the way out."""


def _stars_topup(customer, stars=100):
    return services.create_topup(customer=customer, amount=stars * 100, provider="stars")


def _messages(customer):
    return list(OutboxMessage.objects.filter(chat_id=customer.telegram_id).values_list("params__text", flat=True))


def _connected(signal, fn, uid):
    signal.connect(fn, weak=False, dispatch_uid=uid)
    return lambda: signal.disconnect(dispatch_uid=uid)


def test_the_payment_received_message_exists_before_the_commit_callbacks_run(django_capture_on_commit_callbacks):
    customer = make_customer(language="en")
    payment = _stars_topup(customer)
    # execute=False: the process "dies" right after the commit; its on-commit callbacks never run.
    with django_capture_on_commit_callbacks(execute=False):
        services.mark_payment_succeeded(payment=payment, provider_payment_id=f"stx{payment.pk}")
    assert [text for text in _messages(customer) if text.startswith("✅ Payment received: ₽100")]
    assert selectors.get_balance(customer) == 10_000


def test_a_crash_before_the_commit_leaves_neither_the_credit_nor_the_message(django_capture_on_commit_callbacks):
    customer = make_customer()
    payment = _stars_topup(customer)

    def crash(sender, **kwargs):
        raise Crash()

    disconnect = _connected(payment_succeeded, crash, "crash-after-the-message")  # after the bot's receivers
    try:
        with django_capture_on_commit_callbacks(execute=True), pytest.raises(Crash):
            services.mark_payment_succeeded(payment=payment, provider_payment_id=f"stx{payment.pk}")
    finally:
        disconnect()
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.PENDING
    assert selectors.get_balance(customer) == 0
    assert not Transfer.objects.filter(idempotency_key=f"stars:stx{payment.pk}").exists()
    assert _messages(customer) == []


def test_a_receiver_whose_database_write_fails_is_rolled_back_and_logged_and_the_payment_stays(
    caplog, django_capture_on_commit_callbacks
):
    customer = make_customer()
    payment = _stars_topup(customer)

    def broken_outbox_write(sender, payment, **kwargs):
        OutboxMessage.objects.create(chat_id=None, method="sendMessage", params={})  # NOT NULL refuses it

    disconnect = _connected(payment_succeeded, broken_outbox_write, "broken-outbox-write")
    try:
        with caplog.at_level(logging.ERROR), django_capture_on_commit_callbacks(execute=True):
            result = services.mark_payment_succeeded(payment=payment, provider_payment_id=f"stx{payment.pk}")
    finally:
        disconnect()
    assert result.status == PaymentStatus.SUCCEEDED
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.SUCCEEDED
    assert selectors.get_balance(customer) == 10_000
    assert "receiver" in caplog.text and "failed" in caplog.text
    assert not OutboxMessage.objects.filter(chat_id__isnull=True).exists()


def test_a_failing_quote_resume_costs_the_customer_neither_the_payment_nor_its_message(
    monkeypatch, caplog, django_capture_on_commit_callbacks
):
    customer = make_customer(language="en")
    payment = _stars_topup(customer)

    def broken_resume(chat_id, balance):
        OutboxMessage.objects.create(chat_id=chat_id, method="sendMessage", params={"text": "half a quote"})
        raise RuntimeError("the quote is broken")

    monkeypatch.setattr("telegram_bot.quotes.resume_after_topup", broken_resume)
    with caplog.at_level(logging.ERROR), django_capture_on_commit_callbacks(execute=True):
        services.mark_payment_succeeded(payment=payment, provider_payment_id=f"stx{payment.pk}")
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.SUCCEEDED
    texts = _messages(customer)
    assert [text for text in texts if text.startswith("✅ Payment received: ₽100")]
    assert "half a quote" not in texts  # its own writes are rolled back
    assert "was not shown again" in caplog.text


def test_a_cancel_and_a_refund_are_announced_before_the_commit_too(django_capture_on_commit_callbacks):
    customer = make_customer()
    received = []
    disconnect_cancel = _connected(payment_canceled, lambda sender, payment, **kw: received.append("canceled"), "c1")
    disconnect_refund = _connected(refund_succeeded, lambda sender, refund, **kw: received.append("refunded"), "r1")
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            services.mark_payment_canceled(payment=_stars_topup(customer), reason="expired")
            paid = services.mark_payment_succeeded(payment=_stars_topup(customer), provider_payment_id="stx-r")
            refund = services.request_refund(payment=paid, amount=paid.amount, idempotency_key=uuid.uuid4())
            services.complete_refund(refund=refund)
    finally:
        disconnect_cancel()
        disconnect_refund()
    assert received == ["canceled", "refunded"]
    assert all(getattr(callback, "__name__", "") == "_wake" for callback in callbacks)  # only the loop's wake-up
