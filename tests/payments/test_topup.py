"""create_topup: the real SDK against the stub; what YooKassa is asked for."""
import uuid

import pytest
from django.core.management import call_command
from yookassa import Configuration
from yookassa import Payment as SdkPayment

from billing import selectors
from billing.exceptions import InvalidAmount
from billing.services import set_customer_blocked
from payments import services
from payments.exceptions import (
    CustomerBlocked,
    PaymentProviderRefused,
    PaymentProviderUnavailable,
    ReceiptContactRequired,
    TopupAmountOutOfRange,
    UnknownProvider,
)
from payments.models import Payment, PaymentStatus
from tests.helpers import make_customer

pytestmark = pytest.mark.django_db


def test_create_topup_asks_yookassa_for_a_redirect_capture_payment_with_our_metadata(yookassa_stub, settings):
    settings.YOOKASSA_RETURN_URL = "https://t.me/genbot_test_bot"
    customer = make_customer()
    payment = services.create_topup(customer=customer, amount=30_000, provider="yookassa")
    remote = yookassa_stub.payments[payment.provider_payment_id]
    assert payment.status == PaymentStatus.PENDING
    assert payment.amount == 30_000
    assert payment.confirmation_url == remote["confirmation"]["confirmation_url"]
    assert remote["amount"] == {"value": "300.00", "currency": "RUB"}
    assert remote["confirmation"]["return_url"] == "https://t.me/genbot_test_bot"
    assert remote["metadata"]["payment_id"] == str(payment.pk)
    assert remote["metadata"]["customer_id"] == str(customer.pk)
    assert str(payment.pk) in remote["description"]
    assert yookassa_stub.last_receipt is None
    assert selectors.get_balance(customer) == 0  # nothing is credited before the money arrives


def test_the_sdk_is_pointed_at_the_configured_api_url(yookassa_stub):
    services.create_topup(customer=make_customer(), amount=10_000, provider="yookassa")
    assert Configuration.api_url == yookassa_stub.api_url
    assert yookassa_stub.calls[("POST", "/v3/payments")] == 1


def test_the_idempotence_key_makes_a_retried_create_return_the_same_provider_payment(yookassa_stub):
    payment = services.create_topup(customer=make_customer(), amount=10_000, provider="yookassa")
    again = SdkPayment.create(
        {"amount": {"value": "100.00", "currency": "RUB"},
         "confirmation": {"type": "redirect", "return_url": "https://t.me/x"}, "capture": True},
        str(payment.idempotence_key),
    )
    assert again.id == payment.provider_payment_id
    assert len(yookassa_stub.payments) == 1


@pytest.mark.parametrize("amount", [9_999, 10_000_001, 0, -100])
def test_amounts_outside_the_configured_range_are_refused_and_nothing_is_created(yookassa_stub, amount):
    with pytest.raises((TopupAmountOutOfRange, InvalidAmount)):
        services.create_topup(customer=make_customer(), amount=amount, provider="yookassa")
    assert not Payment.objects.exists()
    assert not yookassa_stub.payments


def test_the_presets_are_within_range_and_accepted(yookassa_stub, settings):
    assert settings.TOPUP_PRESETS_KOPECKS == [10_000, 30_000, 50_000, 100_000]
    for amount in settings.TOPUP_PRESETS_KOPECKS:
        services.create_topup(customer=make_customer(), amount=amount, provider="yookassa")
    assert len(yookassa_stub.payments) == 4


def test_unknown_provider_and_blocked_customer_are_refused(yookassa_stub):
    customer = make_customer()
    with pytest.raises(UnknownProvider):
        services.create_topup(customer=customer, amount=10_000, provider="paypal")
    set_customer_blocked(customer=customer, blocked=True)
    with pytest.raises(CustomerBlocked):
        services.create_topup(customer=customer, amount=10_000, provider="yookassa")
    assert not Payment.objects.exists()


def test_receipts_on_send_a_54fz_receipt_with_vat_code_mode_and_subject(yookassa_stub, settings):
    settings.YOOKASSA_RECEIPTS = True
    settings.YOOKASSA_RECEIPT_VAT_CODE = 4
    payment = services.create_topup(customer=make_customer(), amount=50_000, provider="yookassa", email="a@example.com")
    receipt = yookassa_stub.last_receipt
    assert receipt["customer"] == {"email": "a@example.com"}
    [item] = receipt["items"]
    assert item["amount"] == {"value": "500.00", "currency": "RUB"}
    assert item["vat_code"] == 4
    assert item["payment_mode"] == settings.YOOKASSA_RECEIPT_PAYMENT_MODE
    assert item["payment_subject"] == settings.YOOKASSA_RECEIPT_PAYMENT_SUBJECT
    assert payment.metadata["receipt_customer"] == {"email": "a@example.com"}


def test_receipts_on_without_any_contact_are_refused_before_anything_is_created(yookassa_stub, settings):
    settings.YOOKASSA_RECEIPTS = True
    settings.YOOKASSA_RECEIPT_EMAIL = ""
    with pytest.raises(ReceiptContactRequired):
        services.create_topup(customer=make_customer(), amount=10_000, provider="yookassa")
    assert not Payment.objects.exists()
    settings.YOOKASSA_RECEIPT_EMAIL = "shop@example.com"
    services.create_topup(customer=make_customer(), amount=10_000, provider="yookassa", phone="")
    assert yookassa_stub.last_receipt["customer"] == {"email": "shop@example.com"}


def test_wrong_credentials_are_refused_and_the_attempt_is_canceled(yookassa_stub, settings):
    settings.YOOKASSA_SECRET_KEY = "wrong"
    with pytest.raises(PaymentProviderRefused):
        services.create_topup(customer=make_customer(), amount=10_000, provider="yookassa")
    assert Payment.objects.get().status == PaymentStatus.CANCELED


def test_an_outage_at_creation_leaves_a_pending_row_that_sync_cancels_later(yookassa_stub):
    yookassa_stub.fail_next(1, status=503)
    with pytest.raises(PaymentProviderUnavailable):
        services.create_topup(customer=make_customer(), amount=10_000, provider="yookassa")
    payment = Payment.objects.get()
    assert payment.status == PaymentStatus.PENDING and payment.provider_payment_id is None
    call_command("sync_payments", older_than=0)
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.CANCELED


def test_an_unreachable_api_is_reported_as_unavailable(settings):
    settings.YOOKASSA_API_URL = "http://127.0.0.1:9/v3"  # discard port: nothing listens
    with pytest.raises(PaymentProviderUnavailable):
        services.create_topup(customer=make_customer(), amount=10_000, provider="yookassa")


def test_stub_requires_an_idempotence_key_on_post(yookassa_stub):
    import requests

    response = requests.post(
        f"{yookassa_stub.api_url}/payments", json={"amount": {"value": "1.00", "currency": "RUB"}},
        auth=(yookassa_stub.shop_id, yookassa_stub.secret_key), timeout=5,
    )
    assert response.status_code == 400
    ok = requests.post(
        f"{yookassa_stub.api_url}/payments",
        json={"amount": {"value": "1.00", "currency": "RUB"}, "confirmation": {"type": "redirect", "return_url": "x"}},
        auth=(yookassa_stub.shop_id, yookassa_stub.secret_key), headers={"Idempotence-Key": str(uuid.uuid4())},
        timeout=5,
    )
    assert ok.status_code == 200 and ok.json()["status"] == "pending"
