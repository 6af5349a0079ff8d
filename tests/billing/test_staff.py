"""Staff adjustments as services: limits per action and per 24 hours, four eyes, server-made keys, the customer told."""
from datetime import timedelta
from unittest import mock

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from django.utils import timezone

from billing import selectors, services
from billing.exceptions import IdempotencyConflict, InvalidStaffKey, StaffDecisionRefused, StaffRequestAlreadyDecided
from billing.models import BalanceAdjustment, StaffRequestStatus, Transfer
from billing.staff import approve_staff_adjustment, reject_staff_request, staff_adjust_balance
from billing.staff_keys import ADJUST_NAMESPACE, REFUND_NAMESPACE, form_token, key_from_token, new_key
from telegram_bot.models import OutboxMessage
from tests.helpers import RUB_5000, make_customer, run_concurrently

pytestmark = pytest.mark.django_db


def adjust(user, customer, amount, *, reason="goodwill", note="", key=None):
    return staff_adjust_balance(
        acting_user=user, customer=customer, amount=amount, reason=reason, note=note,
        idempotency_key=new_key(ADJUST_NAMESPACE) if key is None else key,
    )


def messages_to(customer) -> list[str]:
    return [row.params["text"] for row in OutboxMessage.objects.filter(chat_id=customer.telegram_id).order_by("id")]


def test_two_adjustments_of_5000_do_not_pass_a_daily_limit_of_5000(limits, support):
    c = make_customer()
    first = adjust(support, c, RUB_5000)
    second = adjust(support, c, RUB_5000)
    assert first.status == StaffRequestStatus.DONE and first.transfer.staff_user == support
    assert second.status == StaffRequestStatus.PENDING and second.transfer is None
    assert "24 hours" in second.limit_message
    # In roubles the way the rest of the admin shows them (not "₽5,000").
    assert "5\u00a0000\u00a0₽ in 24 hours (5\u00a0000\u00a0₽ done)" in second.limit_message
    assert selectors.get_balance(c) == RUB_5000


def test_the_daily_limit_counts_both_directions_and_only_the_last_24_hours(limits, support):
    c = make_customer(balance=RUB_5000)
    adjust(support, c, -3_000_00)
    assert adjust(support, c, 2_000_01).is_pending  # 3,000 taken + 2,000.01 added > 5,000
    # A day later the old adjustment no longer counts (the ledger is append-only: move the clock).
    later = timezone.now() + timedelta(hours=24, seconds=1)
    with mock.patch("billing.policy.timezone.now", return_value=later):
        assert adjust(support, c, 5_000_00).status == StaffRequestStatus.DONE


def test_one_action_above_the_per_action_limit_waits_and_a_superuser_is_not_limited(limits, support, boss):
    c = make_customer()
    assert adjust(support, c, RUB_5000 + 1).is_pending
    assert adjust(boss, c, 100 * RUB_5000).status == StaffRequestStatus.DONE
    assert adjust(boss, c, 100 * RUB_5000).status == StaffRequestStatus.DONE
    assert selectors.get_balance(c) == 200 * RUB_5000


@pytest.mark.django_db(transaction=True)
def test_concurrent_adjustments_of_one_member_cannot_both_pass_the_daily_limit(limits, support):
    c = make_customer()
    results = run_concurrently(lambda i: adjust(support, c, RUB_5000).status, 4)
    assert sorted(results) == sorted([("ok", StaffRequestStatus.DONE)] + [("ok", StaffRequestStatus.PENDING)] * 3)
    assert selectors.get_balance(c) == RUB_5000
    assert BalanceAdjustment.objects.filter(status=StaffRequestStatus.PENDING).count() == 3


@pytest.mark.django_db(transaction=True)
def test_concurrent_adjustments_for_different_customers_still_share_the_members_limit(limits, support):
    customers = [make_customer() for _ in range(4)]
    results = run_concurrently(lambda i: adjust(support, customers[i], 2_000_00).status, 4)
    assert [r[0] for r in results] == ["ok"] * 4
    assert sum(1 for r in results if r[1] == StaffRequestStatus.DONE) == 2  # 4,000 of 5,000; a third would be 6,000
    assert sum(selectors.get_balance(c) for c in customers) == 4_000_00


def test_the_same_key_adjusts_once_and_another_amount_under_it_conflicts(support):
    c = make_customer()
    key = new_key(ADJUST_NAMESPACE)
    assert adjust(support, c, 100, key=key).pk == adjust(support, c, 100, key=key).pk
    with pytest.raises(IdempotencyConflict):
        adjust(support, c, 200, key=key)
    assert selectors.get_balance(c) == 100


@pytest.mark.parametrize("key", ["yookassa:2f0c1", "stars:abc", "job:7", f"{REFUND_NAMESPACE}{new_key('')}",
                                 "admin-adjust:not-a-uuid", ""])
def test_no_staff_adjustment_takes_a_key_outside_its_namespace(support, key):
    c = make_customer(balance=1_000)
    with pytest.raises(InvalidStaffKey):
        adjust(support, c, 100, key=key)
    with pytest.raises(InvalidStaffKey):
        services.adjust_balance(customer=c, amount=100, idempotency_key=key, staff_user=support, reason="x")
    assert not Transfer.objects.filter(idempotency_key=key).exists()


def test_a_form_token_gives_back_its_key_and_a_tampered_one_is_refused():
    token = form_token(ADJUST_NAMESPACE)
    key = key_from_token(token, ADJUST_NAMESPACE)
    assert key.startswith(ADJUST_NAMESPACE) and key in token
    with pytest.raises(InvalidStaffKey):
        key_from_token(token.replace(key, new_key(ADJUST_NAMESPACE)), ADJUST_NAMESPACE)
    with pytest.raises(InvalidStaffKey):
        key_from_token("yookassa:2f0c1", ADJUST_NAMESPACE)
    with pytest.raises(InvalidStaffKey):
        key_from_token(token, REFUND_NAMESPACE)


def test_a_superuser_approves_a_pending_adjustment_once_and_the_customer_is_told(limits, support, boss, django_user_model):
    c = make_customer(language="en")
    pending = adjust(support, c, RUB_5000 + 1, reason="compensation for job #12", note="ticket 4411, VIP")
    assert messages_to(c) == []
    with pytest.raises(StaffDecisionRefused):
        approve_staff_adjustment(acting_user=support, request=pending)  # not a superuser
    done = approve_staff_adjustment(acting_user=boss, request=pending)
    assert done.status == StaffRequestStatus.DONE and done.decided_by == boss and done.decided_at
    assert done.transfer.idempotency_key == pending.idempotency_key and done.transfer.staff_user == boss
    assert selectors.get_balance(c) == RUB_5000 + 1
    with pytest.raises(StaffRequestAlreadyDecided):
        approve_staff_adjustment(acting_user=django_user_model.objects.create_superuser("boss2"), request=pending)
    assert selectors.get_balance(c) == RUB_5000 + 1
    [text] = messages_to(c)
    assert "compensation for job #12" in text and "₽5,000.01" in text
    assert "ticket" not in text and "VIP" not in text


def test_nobody_decides_their_own_request(settings, django_user_model):
    settings.SUPPORT_MONEY_LIMIT_KOPECKS = 0
    settings.SUPPORT_DAILY_LIMIT_KOPECKS = 0
    boss = django_user_model.objects.create_user("was-support", is_staff=True)
    pending = adjust(boss, make_customer(), 100)
    boss.is_superuser = True
    boss.save(update_fields=["is_superuser"])
    with pytest.raises(StaffDecisionRefused):
        approve_staff_adjustment(acting_user=boss, request=pending)
    with pytest.raises(StaffDecisionRefused):
        reject_staff_request(acting_user=boss, request=pending)
    assert BalanceAdjustment.objects.get(pk=pending.pk).is_pending


def test_a_rejected_request_moves_nothing_and_cannot_be_approved_later(limits, support, boss):
    c = make_customer()
    pending = adjust(support, c, RUB_5000 + 1)
    rejected = reject_staff_request(acting_user=boss, request=pending)
    assert rejected.status == StaffRequestStatus.REJECTED and rejected.decided_by == boss
    with pytest.raises(StaffRequestAlreadyDecided):
        approve_staff_adjustment(acting_user=boss, request=pending)
    assert selectors.get_balance(c) == 0 and messages_to(c) == []


def test_the_customer_is_told_in_russian_with_the_reason_for_them_never_the_note(support):
    c = make_customer(language="ru", balance=10_000)
    adjust(support, c, -2_500, reason="двойное начисление", note="internal: customer was rude")
    [text] = messages_to(c)
    assert text.startswith("Поддержка списала с вашего баланса 25\u00a0₽") and "75\u00a0₽" in text
    assert "Причина: двойное начисление" in text
    assert "internal" not in text and "rude" not in text
    assert Transfer.objects.get(idempotency_key__startswith=ADJUST_NAMESPACE).description == "двойное начисление"


# --- the admin ----------------------------------------------------------------------------


def test_a_superuser_approves_and_rejects_in_the_admin_and_both_are_audited(client, limits, support, boss):
    c = make_customer()
    first = adjust(support, c, RUB_5000 + 1)
    second = adjust(support, c, RUB_5000 + 2)
    client.force_login(boss)
    url = reverse("admin:billing_balanceadjustment_changelist")
    assert client.get(url).status_code == 200
    assert client.post(url, {"action": "approve_selected", "_selected_action": [first.pk]}).status_code == 302
    assert client.post(url, {"action": "reject_selected", "_selected_action": [second.pk]}).status_code == 302
    assert BalanceAdjustment.objects.get(pk=first.pk).status == StaffRequestStatus.DONE
    assert BalanceAdjustment.objects.get(pk=second.pk).status == StaffRequestStatus.REJECTED
    assert selectors.get_balance(c) == RUB_5000 + 1
    assert set(LogEntry.objects.filter(user=boss).values_list("object_id", "change_message")) == {
        (str(first.pk), "approved"), (str(second.pk), "rejected")
    }


def test_support_sees_the_pending_requests_but_cannot_decide_them(client, limits, django_user_model):
    from genbot.roles import ensure_roles

    member = django_user_model.objects.create_user("member", is_staff=True)
    member.groups.add(ensure_roles())
    c = make_customer()
    pending = adjust(member, c, RUB_5000 + 1)
    client.force_login(member)
    url = reverse("admin:billing_balanceadjustment_changelist")
    page = client.get(url)
    assert page.status_code == 200 and "approve_selected" not in page.content.decode()
    client.post(url, {"action": "approve_selected", "_selected_action": [pending.pk]})
    assert BalanceAdjustment.objects.get(pk=pending.pk).is_pending
    assert selectors.get_balance(c) == 0


def test_a_key_typed_into_the_adjust_form_is_refused(client, support):
    from django.contrib.auth.models import Permission

    support.user_permissions.add(*Permission.objects.filter(codename__in=["view_customer", "adjust_balance"]))
    client.force_login(support)
    c = make_customer()
    url = reverse("admin:billing_customer_adjust", args=[c.pk])
    for key in ("yookassa:2f0c1", new_key(ADJUST_NAMESPACE)):
        page = client.post(url, {"direction": "add", "amount": "10", "reason": "x", "idempotency_key": key})
        assert page.status_code == 200 and "damaged" in page.content.decode()
    assert not Transfer.objects.filter(customer=c).exists()
