"""Rule 5: a refund never returns more than its payment brought in, nor any bonus money.

The wallet's cash (``billing.selectors.cash_refundable``) is checked under the wallet lock, in
the transaction of the refund's debit.
"""
import threading
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import translation

from billing import selectors
from billing import services as billing
from payments import services
from payments.exceptions import RefundExceedsCash, RefundExceedsPayment
from payments.models import Payment, Refund, RefundStatus
from tests.helpers import make_customer, run_concurrently


def key():
    return str(uuid.uuid4())


def bonus(customer, amount, source="promo"):
    billing.credit_balance(customer=customer, amount=amount, idempotency_key=f"{source}:{key()}", source=source)


def spend(customer, amount):
    reservation = billing.reserve_balance(customer=customer, amount=amount, idempotency_key=f"job:{key()}")
    billing.charge_reserved_balance(reservation=reservation)


@pytest.mark.django_db
def test_a_refund_that_would_pay_out_bonus_money_is_refused_and_its_cash_part_is_not(paid_topup, yookassa_stub,
                                                                                      books_balance):
    customer = make_customer()
    payment = paid_topup(customer, 50_000)
    spend(customer, 40_000)  # no bonus yet: 40,000 of the payment's money is gone
    bonus(customer, 30_000)
    assert selectors.get_balance(customer) == 40_000 and selectors.cash_refundable(customer) == 10_000
    with pytest.raises(RefundExceedsCash) as exc:
        services.refund_payment(payment=payment, amount=40_000, idempotency_key=key())
    with translation.override("en"):
        assert "At most 100\xa0₽ can be refunded in cash" in str(exc.value) and "bonus money" in str(exc.value)
    with translation.override("ru"):
        assert "бонус" in str(exc.value) and "100" in str(exc.value)
    assert not Refund.objects.exists() and yookassa_stub.calls[("POST", "/v3/refunds")] == 0
    refund = services.refund_payment(payment=payment, amount=10_000, idempotency_key=key())
    assert refund.status == RefundStatus.SUCCEEDED
    assert selectors.get_balance(customer) == 30_000 and selectors.cash_refundable(customer) == 0
    books_balance()


@pytest.mark.django_db
def test_bonus_money_is_spent_first_so_the_payment_can_still_be_refunded_in_full(paid_topup, yookassa_stub):
    customer = make_customer()
    bonus(customer, 30_000, source="welcome")
    payment = paid_topup(customer, 50_000)
    spend(customer, 30_000)
    refund = services.refund_payment(payment=payment, amount=50_000, idempotency_key=key())
    assert refund.status == RefundStatus.SUCCEEDED
    assert selectors.get_balance(customer) == 0


@pytest.mark.django_db
def test_a_payments_cap_holds_however_much_cash_the_wallet_has(paid_topup, yookassa_stub):
    customer = make_customer()
    paid_topup(customer, 100_000)
    payment = paid_topup(customer, 50_000)
    with pytest.raises(RefundExceedsPayment):
        services.refund_payment(payment=payment, amount=50_001, idempotency_key=key())


@pytest.mark.django_db
def test_the_refund_page_shows_what_can_be_refunded_in_cash(client, paid_topup):
    client.force_login(get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-123456"))
    customer = make_customer()
    payment = paid_topup(customer, 50_000)
    spend(customer, 20_000)
    bonus(customer, 5_000)
    page = client.get(reverse("admin:payments_payment_refund", args=[payment.pk]), HTTP_ACCEPT_LANGUAGE="en")
    body = page.content.decode()
    cash = body[body.index('id="refundable-in-cash"'):].split("</p>")[0]
    assert "in cash" in cash and "300\xa0₽" in cash


@pytest.mark.django_db(transaction=True)
def test_concurrent_refunds_of_several_payments_of_one_customer_never_exceed_its_cash(paid_topup, yookassa_stub,
                                                                                     books_balance):
    customer = make_customer()
    payments = [paid_topup(customer, 10_000) for _ in range(8)]
    spend(customer, 50_000)  # 30,000 of cash left
    bonus(customer, 100_000)  # enough on the wallet for every refund: only the cash rule can refuse
    connected = threading.Barrier(len(payments))

    def refund(i):
        Payment.objects.filter(pk=payments[i].pk).exists()  # connect first, so the refunds start together
        connected.wait()
        return services.request_refund(payment=payments[i], amount=10_000, idempotency_key=key()).pk

    results = run_concurrently(refund, len(payments))
    passed = [r for r in results if r[0] == "ok"]
    assert len(passed) == 3, results
    assert all(isinstance(r[1], RefundExceedsCash) for r in results if r[0] != "ok"), results
    assert Refund.objects.count() == 3
    assert selectors.get_balance(customer) == 100_000 and selectors.cash_refundable(customer) == 0
    books_balance()
