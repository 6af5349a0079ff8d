"""The welcome bonus: once per Telegram id, for new customers only, however many /starts arrive."""
from datetime import timedelta

import pytest
from django.utils import timezone

from billing import selectors as billing_selectors
from billing.models import Customer, Transfer
from promotions import services
from tests.helpers import make_customer, run_concurrently

from .conftest import pay

pytestmark = pytest.mark.django_db


@pytest.fixture
def welcome(settings):
    settings.WELCOME_BONUS_KOPECKS = 50_00


def test_off_by_default_credits_nothing():
    customer = make_customer()
    assert services.grant_welcome_bonus(customer=customer) is None
    assert billing_selectors.get_balance(customer) == 0


def test_credits_once_and_announces_the_balance(welcome, signals_seen):
    customer = make_customer()
    transfer = services.grant_welcome_bonus(customer=customer)
    assert transfer.amount == 50_00 and transfer.idempotency_key == f"welcome:{customer.telegram_id}"
    assert services.grant_welcome_bonus(customer=customer) is None
    assert billing_selectors.get_balance(customer) == 50_00
    [seen] = signals_seen["bonus_credited"]
    assert (seen["customer"], seen["amount"], seen["kind"], seen["balance"]) == (customer, 50_00, "welcome", 50_00)


def test_a_changed_amount_later_is_no_conflict_and_credits_nothing(welcome, settings):
    customer = make_customer()
    services.grant_welcome_bonus(customer=customer)
    settings.WELCOME_BONUS_KOPECKS = 70_00
    assert services.grant_welcome_bonus(customer=customer) is None
    assert billing_selectors.get_balance(customer) == 50_00


def test_not_for_a_customer_who_is_not_new(welcome):
    old = make_customer()
    Customer.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=2))
    old.refresh_from_db()
    assert services.grant_welcome_bonus(customer=old) is None
    paid = make_customer()
    pay(paid, 100_00)
    assert services.grant_welcome_bonus(customer=paid) is None
    assert not Transfer.objects.filter(idempotency_key__startswith="welcome:").exists()


@pytest.mark.django_db(transaction=True)
def test_20_concurrent_first_starts_credit_once(welcome, signals_seen):
    customer = make_customer()
    results = run_concurrently(lambda i: services.grant_welcome_bonus(customer=customer), 20)
    assert {kind for kind, _r in results} == {"ok"}, results
    assert len([r for _kind, r in results if r is not None]) == 1
    assert Transfer.objects.filter(idempotency_key=f"welcome:{customer.telegram_id}").count() == 1
    assert billing_selectors.get_balance(customer) == 50_00
    assert len(signals_seen["bonus_credited"]) == 1
