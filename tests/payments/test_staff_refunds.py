"""Staff refunds as a service: the members' limits (shared with adjustments), four eyes, keys made by the server."""
import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from billing import selectors
from billing.exceptions import InvalidStaffKey, StaffRequestAlreadyDecided
from billing.models import StaffRequestStatus, Transfer
from billing.staff import reject_staff_request, staff_adjust_balance
from billing.staff_keys import ADJUST_NAMESPACE, REFUND_NAMESPACE, new_key
from payments import services
from payments.exceptions import RefundExceedsPayment
from payments.models import Payment, PaymentStatus, Refund, RefundRequest, RefundStatus
from payments.staff import approve_staff_refund, staff_refund_payment
from tests.helpers import RUB_5000, make_customer, run_concurrently



def refund(user, payment, amount, *, key=None):
    return staff_refund_payment(
        acting_user=user, payment=payment, amount=amount, reason="asked by the customer", note="ticket 9",
        idempotency_key=key or new_key(REFUND_NAMESPACE),
    )


@pytest.mark.django_db
def test_refunds_and_adjustments_share_the_members_daily_limit(limits, support, paid_topup, yookassa_stub):
    customer = make_customer()
    payment = paid_topup(customer, 10_000_00)
    staff_adjust_balance(acting_user=support, customer=customer, amount=-3_000_00, reason="typo",
                         idempotency_key=new_key(ADJUST_NAMESPACE))
    done = refund(support, payment, 2_000_00)
    assert done.status == StaffRequestStatus.DONE and done.refund.status == RefundStatus.SUCCEEDED
    assert done.refund.idempotence_key.hex in done.idempotency_key.replace("-", "")
    pending = refund(support, payment, 1)
    assert pending.is_pending and pending.refund is None and "24" in pending.limit_message
    assert Refund.objects.count() == 1 and len(yookassa_stub.refunds) == 1
    assert selectors.get_balance(customer) == 5_000_00


@pytest.mark.django_db(transaction=True)
def test_concurrent_refunds_of_one_member_cannot_both_pass_the_daily_limit(limits, support, paid_topup, yookassa_stub):
    customer = make_customer()
    payment = paid_topup(customer, 20_000_00)
    results = run_concurrently(lambda i: refund(support, payment, 3_000_00).status, 4)
    assert [r[0] for r in results] == ["ok"] * 4
    assert sum(1 for r in results if r[1] == StaffRequestStatus.DONE) == 1
    assert Refund.objects.count() == 1 and len(yookassa_stub.refunds) == 1
    assert selectors.get_balance(customer) == 17_000_00


@pytest.mark.django_db
def test_a_superuser_approves_a_pending_refund_once(limits, support, boss, paid_topup, yookassa_stub, books_balance):
    customer = make_customer()
    payment = paid_topup(customer, 10_000_00)
    pending = refund(support, payment, 6_000_00)
    assert pending.is_pending and selectors.get_balance(customer) == 10_000_00
    done = approve_staff_refund(acting_user=boss, request=pending)
    assert done.status == StaffRequestStatus.DONE and done.decided_by == boss
    assert done.refund.status == RefundStatus.SUCCEEDED and done.refund.staff_user == boss
    with pytest.raises(StaffRequestAlreadyDecided):
        approve_staff_refund(acting_user=boss, request=pending)
    assert len(yookassa_stub.refunds) == 1
    assert Payment.objects.get(pk=payment.pk).refunded_amount == 6_000_00
    books_balance()


@pytest.mark.django_db
def test_a_rejected_refund_request_refunds_nothing(limits, support, boss, paid_topup, yookassa_stub):
    customer = make_customer()
    payment = paid_topup(customer, 10_000_00)
    pending = refund(support, payment, 6_000_00)
    reject_staff_request(acting_user=boss, request=pending)
    assert RefundRequest.objects.get().status == StaffRequestStatus.REJECTED
    assert not Refund.objects.exists() and not yookassa_stub.refunds
    assert selectors.get_balance(customer) == 10_000_00


@pytest.mark.django_db
def test_a_request_a_superuser_could_not_approve_is_refused_at_once(limits, support, paid_topup):
    payment = paid_topup(make_customer(), 10_000_00)
    with pytest.raises(RefundExceedsPayment):
        refund(support, payment, 10_000_01)
    assert not RefundRequest.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["yookassa:2f0c1", "stars:abc", "job:7", f"{ADJUST_NAMESPACE}{new_key('')}"])
def test_no_staff_refund_takes_a_key_outside_its_namespace(support, paid_topup, key):
    payment = paid_topup(make_customer(), 10_000)
    with pytest.raises(InvalidStaffKey):
        refund(support, payment, 1_000, key=key)
    assert not Refund.objects.exists() and not RefundRequest.objects.exists()


# --- the attack of point 7 ------------------------------------------------------------------


@pytest.mark.django_db
def test_support_cannot_block_a_payment_credit_with_its_key(client, support, yookassa_stub):
    support.user_permissions.add(*Permission.objects.filter(codename__in=["view_customer", "adjust_balance"]))
    client.force_login(support)
    customer = make_customer()
    payment = services.create_topup(customer=customer, amount=50_000, provider="yookassa")
    credit_key = payment.credit_idempotency_key
    assert credit_key.startswith("yookassa:")
    url = reverse("admin:billing_customer_adjust", args=[customer.pk])
    page = client.post(url, {"direction": "add", "amount": "1", "reason": "x", "idempotency_key": credit_key})
    assert page.status_code == 200
    with pytest.raises(InvalidStaffKey):
        staff_adjust_balance(acting_user=support, customer=customer, amount=100, reason="x", idempotency_key=credit_key)
    assert not Transfer.objects.filter(idempotency_key=credit_key).exists()

    yookassa_stub.mark_succeeded(payment.provider_payment_id, notify=False)
    paid = services.sync_yookassa_payment(provider_payment_id=payment.provider_payment_id)
    assert paid.status == PaymentStatus.SUCCEEDED
    assert selectors.get_balance(customer) == 50_000


@pytest.mark.django_db
def test_a_refund_form_with_a_raw_key_is_refused(client, boss, paid_topup, yookassa_stub):
    client.force_login(boss)
    payment = paid_topup(make_customer(), 50_000)
    url = reverse("admin:payments_payment_refund", args=[payment.pk])
    for raw in (new_key(REFUND_NAMESPACE), "yookassa:x", "8f1e9c62-4d5a-4a43-9d1d-0c5a7f3e2b11"):
        page = client.post(url, {"amount": "100", "reason": "", "idempotency_key": raw}, HTTP_ACCEPT_LANGUAGE="en")
        assert page.status_code == 200 and "damaged" in page.content.decode()
    assert not Refund.objects.exists()


@pytest.mark.django_db
def test_a_superuser_decides_refund_requests_in_the_admin(client, limits, support, boss, paid_topup, yookassa_stub):
    payment = paid_topup(make_customer(), 20_000_00)
    first, second = refund(support, payment, 6_000_00), refund(support, payment, 7_000_00)
    client.force_login(boss)
    url = reverse("admin:payments_refundrequest_changelist")
    assert client.get(url).status_code == 200
    client.post(url, {"action": "approve_selected", "_selected_action": [first.pk]})
    client.post(url, {"action": "reject_selected", "_selected_action": [second.pk]})
    assert RefundRequest.objects.get(pk=first.pk).refund.status == RefundStatus.SUCCEEDED
    assert RefundRequest.objects.get(pk=second.pk).status == StaffRequestStatus.REJECTED
    assert client.get(reverse("admin:payments_refundrequest_change", args=[first.pk])).status_code == 200
