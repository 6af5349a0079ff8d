"""mark_payment_succeeded: the credit first, then one conditional UPDATE; losing it undoes the credit."""
import pytest

from billing import selectors
from billing.services import credit_balance
from billing.models import Transfer
from payments import services
from payments.models import Payment, PaymentStatus
from payments.signals import payment_succeeded
from tests.helpers import make_customer

pytestmark = pytest.mark.django_db


def _pending(amount=40_000):
    customer = make_customer()
    payment = services.create_topup(customer=customer, amount=amount, provider="yookassa")
    return customer, payment


def _credits(payment):
    return Transfer.objects.filter(idempotency_key=payment.credit_idempotency_key)


def test_the_winner_credits_links_the_credit_and_announces_the_balance_after_it(
    yookassa_stub, books_balance, django_capture_on_commit_callbacks
):
    customer, payment = _pending()
    credit_balance(customer=customer, amount=7_000, idempotency_key="bonus:x", source="bonus")  # money already there
    announced = []
    payment_succeeded.connect(lambda sender, payment, balance=None, **kw: announced.append(balance),
                              weak=False, dispatch_uid="m1")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            result = services.mark_payment_succeeded(payment=payment)
    finally:
        payment_succeeded.disconnect(dispatch_uid="m1")
    stored = Payment.objects.get(pk=payment.pk)
    assert result.status == stored.status == PaymentStatus.SUCCEEDED
    assert stored.credit_transfer == _credits(payment).get()
    assert stored.succeeded_at is not None
    assert announced == [47_000]
    assert selectors.get_balance(customer) == 47_000
    books_balance()


def test_a_stale_copy_of_a_payment_canceled_meanwhile_credits_nothing(yookassa_stub, books_balance):
    customer, payment = _pending()
    stale = Payment.objects.select_related("customer").get(pk=payment.pk)
    services.mark_payment_canceled(payment=payment, reason="expired")
    result = services.mark_payment_succeeded(payment=stale)
    assert result.status == PaymentStatus.CANCELED
    assert not _credits(payment).exists()  # the credit written first was rolled back
    assert Payment.objects.get(pk=payment.pk).credit_transfer_id is None
    assert selectors.get_balance(customer) == 0
    books_balance()


def test_a_stale_copy_of_a_payment_credited_meanwhile_credits_nothing_more(yookassa_stub, books_balance):
    customer, payment = _pending()
    first = Payment.objects.select_related("customer").get(pk=payment.pk)
    second = Payment.objects.select_related("customer").get(pk=payment.pk)
    services.mark_payment_succeeded(payment=first)
    result = services.mark_payment_succeeded(payment=second)
    assert result.status == PaymentStatus.SUCCEEDED
    assert _credits(payment).count() == 1
    assert selectors.get_balance(customer) == 40_000
    books_balance()
