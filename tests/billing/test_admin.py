"""The billing admin through the Django test client: read-only ledger, audited adjustments."""
import re

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from billing import selectors
from billing.models import BalanceAdjustment, StaffRequestStatus, Transfer
from billing.staff_keys import ADJUST_NAMESPACE, key_from_token
from tests.helpers import make_customer

pytestmark = pytest.mark.django_db


@pytest.fixture
def support(django_user_model, client):
    user = django_user_model.objects.create_user("support", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_customer", "view_transfer", "adjust_balance"]))
    client.force_login(user)
    return user


def adjust_form_key(client, url):
    page = client.get(url)
    assert page.status_code == 200
    return re.search(r'name="idempotency_key" value="([^"]+)"', page.content.decode()).group(1)


def test_customer_page_shows_balance_held_and_the_ledger(client, support):
    c = make_customer(balance=150_000, username="ann")
    page = client.get(reverse("admin:billing_customer_change", args=[c.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert "1\u00a0500\u00a0₽" in body and "Ledger" in body


def test_adjust_balance_form_adjusts_once_even_when_submitted_twice(client, support):
    c = make_customer(balance=10_000)
    url = reverse("admin:billing_customer_adjust", args=[c.pk])
    key = adjust_form_key(client, url)
    data = {"direction": "add", "amount": "250,50", "reason": "compensation", "idempotency_key": key}
    assert client.post(url, data).status_code == 302
    assert client.post(url, data).status_code == 302
    assert selectors.get_balance(c) == 10_000 + 25_050
    audit = Transfer.objects.get(idempotency_key=key_from_token(key, ADJUST_NAMESPACE))
    assert audit.staff_user == support and audit.description == "compensation"


def test_adjust_balance_below_zero_is_refused_with_a_clear_message(client, support):
    c = make_customer(balance=10_000)
    url = reverse("admin:billing_customer_adjust", args=[c.pk])
    key = adjust_form_key(client, url)
    page = client.post(url, {"direction": "take", "amount": "101", "reason": "x", "idempotency_key": key})
    assert page.status_code == 200 and "below zero" in page.content.decode()
    page = client.post(url, {"direction": "add", "amount": "-5", "reason": "x", "idempotency_key": key})
    assert "positive" in page.content.decode()
    assert selectors.get_balance(c) == 10_000


def test_staff_without_the_permission_cannot_adjust(client, django_user_model):
    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_customer"))
    client.force_login(viewer)
    c = make_customer(balance=10_000)
    url = reverse("admin:billing_customer_adjust", args=[c.pk])
    assert client.get(url).status_code == 403
    assert client.post(url, {"direction": "add", "amount": "1", "reason": "x", "idempotency_key": "k"}).status_code == 403
    assert selectors.get_balance(c) == 10_000


def test_ledger_rows_cannot_be_added_changed_or_deleted_in_the_admin(client, django_user_model):
    boss = django_user_model.objects.create_superuser("boss", password="pw")
    client.force_login(boss)
    c = make_customer(balance=10_000)
    t = Transfer.objects.get(customer=c)
    assert client.get(reverse("admin:billing_transfer_add")).status_code == 403
    assert client.post(reverse("admin:billing_transfer_change", args=[t.pk]), {"amount": 1}).status_code == 403
    assert client.post(reverse("admin:billing_transfer_delete", args=[t.pk]), {"post": "yes"}).status_code == 403
    assert Transfer.objects.get(pk=t.pk).amount == 10_000
    assert client.get(reverse("admin:billing_transfer_change", args=[t.pk])).status_code == 200


def test_support_beyond_the_limit_waits_for_a_superuser_who_can_adjust_at_once(client, support, settings, django_user_model):
    settings.SUPPORT_MONEY_LIMIT_KOPECKS = 100_00
    c = make_customer(balance=10_000)
    url = reverse("admin:billing_customer_adjust", args=[c.pk])
    key = adjust_form_key(client, url)
    page = client.post(url, {"direction": "add", "amount": "100,01", "reason": "big", "idempotency_key": key}, follow=True)
    assert "above your limit" in page.content.decode() and "waits for a superuser" in page.content.decode()
    assert "100,01\u00a0₽ is above your limit of 100\u00a0₽" in page.content.decode().replace("&nbsp;", "\u00a0")
    assert selectors.get_balance(c) == 10_000
    assert BalanceAdjustment.objects.get().status == StaffRequestStatus.PENDING
    key = adjust_form_key(client, url)
    assert client.post(url, {"direction": "add", "amount": "100", "reason": "ok", "idempotency_key": key}).status_code == 302
    assert selectors.get_balance(c) == 20_000

    boss = django_user_model.objects.create_superuser("boss", password="pw")
    client.force_login(boss)
    key = adjust_form_key(client, url)
    assert client.post(url, {"direction": "add", "amount": "1000", "reason": "big", "idempotency_key": key}).status_code == 302
    assert selectors.get_balance(c) == 120_000
