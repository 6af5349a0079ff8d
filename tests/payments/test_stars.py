"""Telegram Stars: signed XTR invoices, pre-checkout refusals, one credit per charge."""
from datetime import timedelta

import pytest
from django.utils import timezone

from billing import selectors
from billing import services as billing
from billing.models import Transfer
from payments import services
from payments.exceptions import (
    PartialStarsRefundNotSupported,
    RefundExceedsCash,
    StarsInvoiceAlreadyPaid,
    StarsInvoiceForeign,
    StarsInvoiceMismatch,
    StarsInvoiceStale,
    StarsInvoiceTampered,
)
from payments.models import Payment, PaymentStatus, RefundStatus
from tests.helpers import make_customer, run_concurrently


def stars_payment(stars=100, **profile):
    customer = make_customer(**profile)
    payment = services.create_stars_topup(customer=customer, stars=stars)
    return customer, payment, services.build_stars_invoice(payment=payment)


def pay(invoice, customer, charge="tg-charge-1", **overrides):
    args = dict(payload=invoice.payload, currency="XTR", total_amount=invoice.prices[0]["amount"],
                telegram_payment_charge_id=charge, telegram_user_id=customer.telegram_id)
    args.update(overrides)
    return services.confirm_stars_payment(**args)


def pre_checkout(invoice, customer, **overrides):
    args = dict(payload=invoice.payload, currency="XTR", total_amount=invoice.prices[0]["amount"],
                telegram_user_id=customer.telegram_id)
    args.update(overrides)
    return services.validate_pre_checkout(**args)


@pytest.mark.django_db
def test_stars_invoice_is_in_xtr_with_a_signed_payload_and_the_stars_price(settings):
    settings.STARS_RATE_KOPECKS = 150
    _customer, payment, invoice = stars_payment(stars=200)
    assert invoice.currency == "XTR"
    assert invoice.provider_token == ""
    assert invoice.prices == [{"label": invoice.prices[0]["label"], "amount": 200}]
    assert payment.amount == 200 * 150
    assert invoice.payload.startswith(f"{payment.pk}.") and len(invoice.payload) <= 128


@pytest.mark.django_db
def test_create_topup_with_stars_prices_the_amount_in_stars(settings):
    settings.STARS_RATE_KOPECKS = 100
    payment = services.create_topup(customer=make_customer(), amount=50_000, provider="stars")
    assert payment.provider == "stars" and payment.stars_amount == 500 and payment.amount == 50_000


@pytest.mark.django_db
def test_pre_checkout_accepts_our_fresh_invoice():
    customer, payment, invoice = stars_payment()
    assert pre_checkout(invoice, customer).pk == payment.pk


@pytest.mark.django_db
@pytest.mark.parametrize(
    "payload_of",
    [
        lambda p: p[:-1] + ("0" if p[-1] != "0" else "1"),  # signature edited
        lambda p: str(int(p.split(".")[0]) + 1) + "." + p.split(".")[1],  # another payment's id
        lambda p: "garbage",
        lambda p: "",
    ],
)
def test_pre_checkout_refuses_a_tampered_or_foreign_made_payload(payload_of):
    customer, _payment, invoice = stars_payment()
    stars_payment()  # a second invoice, so "another payment's id" exists
    with pytest.raises(StarsInvoiceTampered):
        pre_checkout(invoice, customer, payload=payload_of(invoice.payload))


@pytest.mark.django_db
def test_pre_checkout_refuses_an_invoice_issued_to_someone_else():
    _customer, _payment, invoice = stars_payment()
    stranger = make_customer()
    with pytest.raises(StarsInvoiceForeign):
        pre_checkout(invoice, stranger)


@pytest.mark.django_db
def test_pre_checkout_refuses_a_wrong_currency_or_total():
    customer, _payment, invoice = stars_payment(stars=100)
    with pytest.raises(StarsInvoiceMismatch):
        pre_checkout(invoice, customer, currency="RUB")
    with pytest.raises(StarsInvoiceMismatch):
        pre_checkout(invoice, customer, total_amount=1)


@pytest.mark.django_db
def test_pre_checkout_refuses_a_stale_invoice(settings):
    settings.STARS_INVOICE_TTL_SECONDS = 600
    customer, payment, invoice = stars_payment()
    # Aging the row also changes the signed timestamp, so re-sign: what matters is the age check.
    Payment.objects.filter(pk=payment.pk).update(created_at=timezone.now() - timedelta(seconds=601))
    payment.refresh_from_db()
    stale = services.build_stars_invoice(payment=payment)
    with pytest.raises(StarsInvoiceStale):
        pre_checkout(stale, customer)


@pytest.mark.django_db
def test_pre_checkout_refuses_an_invoice_already_paid():
    customer, _payment, invoice = stars_payment()
    pay(invoice, customer)
    with pytest.raises(StarsInvoiceAlreadyPaid):
        pre_checkout(invoice, customer)


@pytest.mark.django_db
def test_successful_payment_delivered_twice_credits_once(settings, books_balance):
    settings.STARS_RATE_KOPECKS = 120
    customer, payment, invoice = stars_payment(stars=100)
    first = pay(invoice, customer, charge="tg-charge-A")
    second = pay(invoice, customer, charge="tg-charge-A")
    assert first.pk == second.pk == payment.pk
    assert first.status == PaymentStatus.SUCCEEDED and first.provider_payment_id == "tg-charge-A"
    assert selectors.get_balance(customer) == 100 * 120
    assert Transfer.objects.filter(idempotency_key="stars:tg-charge-A").count() == 1
    books_balance()


@pytest.mark.django_db(transaction=True)
def test_successful_payment_delivered_concurrently_credits_once(books_balance):
    customer, payment, invoice = stars_payment(stars=100)
    results = run_concurrently(lambda i: pay(invoice, customer, charge="tg-charge-C").pk, 8)
    assert results == [("ok", payment.pk)] * 8
    assert selectors.get_balance(customer) == 100 * 100
    books_balance()


@pytest.mark.django_db
def test_a_second_charge_for_the_same_invoice_is_credited_as_its_own_payment(books_balance):
    customer, payment, invoice = stars_payment(stars=100)
    pay(invoice, customer, charge="tg-charge-1")
    again = pay(invoice, customer, charge="tg-charge-2")
    assert again.pk != payment.pk and again.provider_payment_id == "tg-charge-2"
    assert selectors.get_balance(customer) == 2 * 100 * 100
    books_balance()


@pytest.mark.django_db
def test_a_successful_payment_that_does_not_match_the_invoice_credits_nothing():
    customer, _payment, invoice = stars_payment(stars=100)
    with pytest.raises(StarsInvoiceMismatch):
        pay(invoice, customer, total_amount=1)
    with pytest.raises(StarsInvoiceTampered):
        pay(invoice, customer, payload=invoice.payload + "x")
    assert selectors.get_balance(customer) == 0


@pytest.mark.django_db
def test_staff_refund_of_a_stars_payment_calls_refund_star_payment_and_debits_the_wallet(telegram_stub, books_balance):
    customer, payment, invoice = stars_payment(stars=100)
    pay(invoice, customer, charge="tg-charge-R")
    refund = services.refund_payment(payment=payment, amount=payment.amount, idempotency_key="8f1e9c62-4d5a-4a43-9d1d-0c5a7f3e2b11")
    assert refund.status == RefundStatus.SUCCEEDED
    assert telegram_stub.requests == [
        ("/bot123:test-token/refundStarPayment", {"user_id": customer.telegram_id, "telegram_payment_charge_id": "tg-charge-R"})
    ]
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REFUNDED and payment.refunded_amount == payment.amount
    assert selectors.get_balance(customer) == 0
    # The same form again refunds nothing more and does not call Telegram again.
    services.refund_payment(payment=payment, amount=payment.amount, idempotency_key="8f1e9c62-4d5a-4a43-9d1d-0c5a7f3e2b11")
    assert len(telegram_stub.requests) == 1
    books_balance()


@pytest.mark.django_db
def test_a_stars_refund_is_refused_once_part_of_the_payment_was_spent_and_bonus_money_took_its_place(telegram_stub):
    customer, payment, invoice = stars_payment(stars=100)
    pay(invoice, customer, charge="tg-charge-B")
    billing.charge_reserved_balance(reservation=billing.reserve_balance(customer=customer, amount=100, idempotency_key="job:b"))
    billing.credit_balance(customer=customer, amount=10_000, idempotency_key="promo:b", source="promo")
    assert selectors.get_balance(customer) >= payment.amount
    with pytest.raises(RefundExceedsCash):
        services.refund_payment(payment=payment, amount=payment.amount, idempotency_key="6a6a6a6a-4444-4a4a-8a4a-4a4a4a4a4a4a")
    assert telegram_stub.requests == []


@pytest.mark.django_db
def test_stars_payments_refund_in_full_only(telegram_stub):
    customer, payment, invoice = stars_payment(stars=100)
    pay(invoice, customer, charge="tg-charge-P")
    with pytest.raises(PartialStarsRefundNotSupported):
        services.refund_payment(payment=payment, amount=payment.amount - 100, idempotency_key="5b0f0b7e-1111-4c1c-8c9e-2d2b2b2b2b2b")
    assert selectors.get_balance(customer) == payment.amount
    assert telegram_stub.requests == []


@pytest.mark.django_db
def test_a_refused_stars_refund_fails_and_gives_the_money_back(telegram_stub, books_balance):
    customer, payment, invoice = stars_payment(stars=100)
    pay(invoice, customer, charge="unknown-charge")
    refund = services.refund_payment(payment=payment, amount=payment.amount, idempotency_key="0d7b6f59-2222-4a8e-9d55-6f6f6f6f6f6f")
    assert refund.status == RefundStatus.FAILED
    assert "CHARGE_NOT_FOUND" in refund.failure_reason
    assert selectors.get_balance(customer) == payment.amount
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    books_balance()


@pytest.mark.django_db
def test_a_stars_refund_during_a_telegram_outage_stays_pending_and_sync_finishes_it(telegram_stub):
    customer, payment, invoice = stars_payment(stars=100)
    pay(invoice, customer, charge="tg-charge-O")
    telegram_stub.answer_status = 502
    refund = services.refund_payment(payment=payment, amount=payment.amount, idempotency_key="3c3c3c3c-3333-4c3c-8c3c-3c3c3c3c3c3c")
    assert refund.status == RefundStatus.PENDING
    assert selectors.get_balance(customer) == 0  # already taken from the wallet
    telegram_stub.answer_status = 200
    services.sync_pending_payments(older_than=timedelta(0))
    refund.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.REFUNDED
