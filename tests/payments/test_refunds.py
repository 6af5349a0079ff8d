"""Staff refunds: the wallet first, then YooKassa's Refund.create with the form's key; once."""
import json
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import translation

from billing import selectors
from billing import services as billing
from billing.models import StaffRequestStatus, Transfer
from payments import services
from payments.exceptions import PaymentNotRefundable, RefundExceedsBalance, RefundExceedsPayment
from payments.models import Payment, PaymentStatus, Refund, RefundRequest, RefundStatus
from tests.helpers import make_customer, run_concurrently


def key():
    return str(uuid.uuid4())


def stub_refunded(stub, payment):
    return stub.payments[payment.provider_payment_id]["refunded_amount"]["value"]


@pytest.mark.django_db
def test_partial_then_full_refund_moves_the_status_and_the_money(paid_topup, yookassa_stub, books_balance):
    customer = make_customer()
    payment = paid_topup(customer, 50_000)
    first = services.refund_payment(payment=payment, amount=20_000, idempotency_key=key())
    assert first.status == RefundStatus.SUCCEEDED and first.provider_refund_id in yookassa_stub.refunds
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PARTIALLY_REFUNDED and payment.refunded_amount == 20_000
    assert selectors.get_balance(customer) == 30_000
    assert stub_refunded(yookassa_stub, payment) == "200.00"

    rest = services.refund_payment(payment=payment, amount=30_000, idempotency_key=key())
    assert rest.status == RefundStatus.SUCCEEDED
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REFUNDED and payment.refunded_amount == 50_000
    assert selectors.get_balance(customer) == 0
    assert stub_refunded(yookassa_stub, payment) == "500.00"
    with pytest.raises(PaymentNotRefundable):
        services.refund_payment(payment=payment, amount=1, idempotency_key=key())
    books_balance()


@pytest.mark.django_db
def test_repeated_clicks_with_the_same_form_refund_once(paid_topup, yookassa_stub):
    customer = make_customer()
    payment = paid_topup(customer, 50_000)
    form_key = key()
    refunds = {services.refund_payment(payment=payment, amount=10_000, idempotency_key=form_key).pk for _ in range(3)}
    assert len(refunds) == 1
    assert Refund.objects.count() == 1
    assert len(yookassa_stub.refunds) == 1
    assert selectors.get_balance(customer) == 40_000


@pytest.mark.django_db(transaction=True)
def test_concurrent_clicks_with_the_same_form_refund_once(paid_topup, yookassa_stub, books_balance):
    customer = make_customer()
    payment = paid_topup(customer, 50_000)
    form_key = key()
    results = run_concurrently(
        lambda i: services.refund_payment(payment=payment, amount=10_000, idempotency_key=form_key).pk, 6
    )
    assert {r for r in results} == {("ok", Refund.objects.get().pk)}
    assert len(yookassa_stub.refunds) == 1
    assert selectors.get_balance(customer) == 40_000
    assert Payment.objects.get(pk=payment.pk).refunded_amount == 10_000
    books_balance()


@pytest.mark.django_db(transaction=True)
def test_concurrent_different_refunds_never_exceed_the_payment(paid_topup, yookassa_stub, books_balance):
    customer = make_customer()
    paid_topup(customer, 100_000)  # enough cash on the wallet (bonus money would not do): the payment is the limit
    payment = paid_topup(customer, 50_000)
    results = run_concurrently(
        lambda i: services.refund_payment(payment=payment, amount=20_000, idempotency_key=key()).status, 5
    )
    assert sum(1 for r in results if r == ("ok", RefundStatus.SUCCEEDED)) == 2
    assert all(r[0] == "ok" or isinstance(r[1], RefundExceedsPayment) for r in results)
    payment.refresh_from_db()
    assert payment.refunded_amount == 40_000
    books_balance()


@pytest.mark.django_db
def test_refund_is_refused_when_the_customer_already_spent_the_money(paid_topup, yookassa_stub, books_balance):
    customer = make_customer()
    payment = paid_topup(customer, 50_000)
    billing.reserve_balance(customer=customer, amount=45_000, idempotency_key="job:spent")
    with translation.override("en"), pytest.raises(RefundExceedsBalance) as exc:
        services.refund_payment(payment=payment, amount=10_000, idempotency_key=key())
    assert "already spent" in str(exc.value) and "50" in str(exc.value)
    assert not Refund.objects.exists()
    assert not yookassa_stub.refunds
    assert yookassa_stub.calls[("POST", "/v3/refunds")] == 0
    assert selectors.get_balance(customer) == 5_000
    books_balance()


@pytest.mark.django_db
def test_refund_larger_than_what_is_left_is_refused(paid_topup):
    customer = make_customer(balance=100_000)
    payment = paid_topup(customer, 50_000)
    with pytest.raises(RefundExceedsPayment):
        services.refund_payment(payment=payment, amount=50_001, idempotency_key=key())
    services.refund_payment(payment=payment, amount=30_000, idempotency_key=key())
    with pytest.raises(RefundExceedsPayment):
        services.refund_payment(payment=payment, amount=20_001, idempotency_key=key())


@pytest.mark.django_db
def test_pending_or_canceled_payments_cannot_be_refunded(yookassa_stub):
    customer = make_customer(balance=100_000)
    payment = services.create_topup(customer=customer, amount=50_000, provider="yookassa")
    with pytest.raises(PaymentNotRefundable):
        services.refund_payment(payment=payment, amount=10_000, idempotency_key=key())
    assert selectors.get_balance(customer) == 100_000


@pytest.mark.django_db
def test_a_refund_during_an_outage_stays_pending_and_sync_submits_it_once(paid_topup, yookassa_stub, books_balance):
    customer = make_customer()
    payment = paid_topup(customer, 50_000)
    yookassa_stub.fail_next(1, status=500)
    refund = services.refund_payment(payment=payment, amount=10_000, idempotency_key=key())
    assert refund.status == RefundStatus.PENDING and refund.provider_refund_id is None
    assert selectors.get_balance(customer) == 40_000  # the wallet was debited in step 1
    report = services.sync_pending_payments(older_than=timedelta(0))
    assert report.refunds_checked == 1
    refund.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED
    services.sync_pending_payments(older_than=timedelta(0))
    assert len(yookassa_stub.refunds) == 1
    assert Payment.objects.get(pk=payment.pk).refunded_amount == 10_000
    books_balance()


@pytest.mark.django_db
def test_a_crash_after_the_debit_is_recovered_with_the_same_idempotence_key(paid_topup, yookassa_stub):
    customer = make_customer()
    payment = paid_topup(customer, 50_000)
    refund = services.request_refund(payment=payment, amount=10_000, idempotency_key=key())  # step 2 never ran
    services.submit_refund(refund=refund)
    # A second submit (the first answer was lost) reuses the key: YooKassa refunds once.
    Refund.objects.filter(pk=refund.pk).update(status=RefundStatus.PENDING, provider_refund_id=None)
    Payment.objects.filter(pk=payment.pk).update(status=PaymentStatus.SUCCEEDED, refunded_amount=0)
    services.submit_refund(refund=refund)
    assert len(yookassa_stub.refunds) == 1
    assert yookassa_stub.calls[("POST", "/v3/refunds")] == 2


@pytest.mark.django_db
def test_a_pending_refund_is_completed_by_the_refund_succeeded_notification(paid_topup, yookassa_stub, client):
    yookassa_stub.refund_status = "pending"
    customer = make_customer()
    payment = paid_topup(customer, 50_000)
    refund = services.refund_payment(payment=payment, amount=50_000, idempotency_key=key())
    assert refund.status == RefundStatus.PENDING
    remote = yookassa_stub.mark_refund_succeeded(refund.provider_refund_id, notify=False)
    body = json.dumps(yookassa_stub.notification("refund.succeeded", remote))
    for _ in range(2):
        response = client.post("/webhook/yookassa", body, content_type="application/json", REMOTE_ADDR="185.71.76.1")
        assert response.status_code == 200
    refund.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REFUNDED and payment.refunded_amount == 50_000
    assert selectors.get_balance(customer) == 0


@pytest.mark.django_db
def test_a_refund_yookassa_cancels_fails_and_credits_the_wallet_back_once(paid_topup, yookassa_stub, books_balance):
    yookassa_stub.refund_status = "canceled"
    customer = make_customer()
    payment = paid_topup(customer, 50_000)
    refund = services.refund_payment(payment=payment, amount=20_000, idempotency_key=key())
    assert refund.status == RefundStatus.FAILED
    assert selectors.get_balance(customer) == 50_000
    services.fail_refund(refund=refund, reason="again")
    assert Transfer.objects.filter(idempotency_key=f"refund-failed:{refund.pk}").count() == 1
    assert selectors.get_balance(customer) == 50_000
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED and payment.refunded_amount == 0
    books_balance()


# --- the admin ----------------------------------------------------------------------------


def refund_form_token(client, url) -> str:
    """The signed key token the refund form was rendered with."""
    page = client.get(url)
    assert page.status_code == 200
    return page.context["form"].initial["idempotency_key"]


@pytest.fixture
def staff_client(client, db):
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-123456")
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_admin_refund_form_refunds_once_however_often_it_is_submitted(staff_client, paid_topup, yookassa_stub):
    customer = make_customer()
    payment = paid_topup(customer, 50_000)
    url = reverse("admin:payments_payment_refund", args=[payment.pk])
    page = staff_client.get(url)
    assert page.status_code == 200
    form_key = page.context["form"].initial["idempotency_key"]
    data = {"amount": "150,50", "reason": "asked by the customer", "idempotency_key": form_key}
    for _ in range(3):
        response = staff_client.post(url, data)
        assert response.status_code == 302
    refund = Refund.objects.get()
    assert refund.amount == 15_050 and refund.staff_user.username == "boss"
    assert len(yookassa_stub.refunds) == 1
    assert selectors.get_balance(customer) == 50_000 - 15_050


@pytest.mark.django_db
def test_admin_refund_form_shows_the_refusal_when_the_money_was_spent(staff_client, paid_topup, yookassa_stub):
    customer = make_customer()
    payment = paid_topup(customer, 50_000)
    billing.reserve_balance(customer=customer, amount=50_000, idempotency_key="job:all")
    url = reverse("admin:payments_payment_refund", args=[payment.pk])
    response = staff_client.post(url, {"amount": "500", "reason": "", "idempotency_key": refund_form_token(staff_client, url)},
                                 HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert "already spent" in response.content.decode()
    assert not Refund.objects.exists()


@pytest.mark.django_db
def test_admin_refund_action_leads_to_the_form_and_the_lists_render(staff_client, paid_topup):
    payment = paid_topup(make_customer(), 50_000)
    changelist = reverse("admin:payments_payment_changelist")
    response = staff_client.post(changelist, {"action": "refund_action", "_selected_action": [payment.pk]})
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:payments_payment_refund", args=[payment.pk])
    for url in (changelist, reverse("admin:payments_payment_change", args=[payment.pk]),
                reverse("admin:payments_refund_changelist"),
                f"{changelist}?status__exact=succeeded&provider__exact=yookassa"):
        assert staff_client.get(url).status_code == 200


@pytest.mark.django_db
def test_staff_without_the_refund_permission_cannot_open_the_form(client, paid_topup):
    payment = paid_topup(make_customer(), 50_000)
    user = get_user_model().objects.create_user("clerk", password="pw-123456", is_staff=True)
    client.force_login(user)
    assert client.get(reverse("admin:payments_payment_refund", args=[payment.pk])).status_code == 403


@pytest.mark.django_db
def test_support_refunds_up_to_the_limit_and_only_a_superuser_beyond(client, paid_topup, yookassa_stub, settings):
    from genbot.roles import SUPPORT_GROUP, ensure_roles

    settings.SUPPORT_MONEY_LIMIT_KOPECKS = 100_00
    support = get_user_model().objects.create_user("support", password="pw", is_staff=True)
    support.groups.add(ensure_roles())
    assert support.groups.filter(name=SUPPORT_GROUP).exists()
    client.force_login(support)
    customer = make_customer()
    payment = paid_topup(customer, 50_000)
    url = reverse("admin:payments_payment_refund", args=[payment.pk])
    over = client.post(url, {"amount": "100,01", "reason": "", "idempotency_key": refund_form_token(client, url)},
                       HTTP_ACCEPT_LANGUAGE="en", follow=True)
    assert "above your limit" in over.content.decode() and "waits for a superuser" in over.content.decode()
    assert not Refund.objects.exists() and selectors.get_balance(customer) == 50_000
    assert RefundRequest.objects.get().status == StaffRequestStatus.PENDING
    within = client.post(url, {"amount": "100", "reason": "", "idempotency_key": refund_form_token(client, url)},
                         HTTP_ACCEPT_LANGUAGE="en")
    assert within.status_code == 302
    assert Refund.objects.get().amount == 100_00
