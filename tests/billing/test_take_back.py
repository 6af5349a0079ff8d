"""billing.services.take_back: a bonus goes back to the bonus account as far as the wallet allows."""
import pytest

from billing import exceptions as errors
from billing import selectors, services
from billing.models import Account, SystemAccount, TransferKind
from tests.helpers import make_customer, run_concurrently

pytestmark = pytest.mark.django_db


def _bonus_balance() -> int:
    return Account.objects.get(code=SystemAccount.BONUS).balance


def test_takes_all_when_the_wallet_has_it_and_returns_it_to_the_bonus_account():
    customer = make_customer(balance=10_000)  # funded from the bonus account
    transfer = services.take_back(customer=customer, up_to=3_000, idempotency_key="tb:1", description="refund")
    assert transfer.amount == 3_000 and transfer.kind == TransferKind.SINGLE and transfer.source == "takeback"
    assert selectors.get_balance(customer) == 7_000
    assert _bonus_balance() == -7_000


def test_takes_only_what_is_available_held_money_included():
    customer = make_customer(balance=10_000)
    services.reserve_balance(customer=customer, amount=8_000, idempotency_key="job:1")
    transfer = services.take_back(customer=customer, up_to=5_000, idempotency_key="tb:2", description="refund")
    assert transfer.amount == 2_000
    assert selectors.get_balance(customer) == 0 and selectors.get_held(customer) == 8_000


def test_nothing_available_moves_nothing_and_returns_none():
    customer = make_customer()
    assert services.take_back(customer=customer, up_to=5_000, idempotency_key="tb:3", description="x") is None
    assert selectors.get_balance(customer) == 0


def test_the_same_key_returns_the_first_take_back_and_moves_nothing_more():
    customer = make_customer(balance=10_000)
    first = services.take_back(customer=customer, up_to=4_000, idempotency_key="tb:4", description="x")
    again = services.take_back(customer=customer, up_to=4_000, idempotency_key="tb:4", description="x")
    assert again.pk == first.pk
    assert selectors.get_balance(customer) == 6_000


def test_a_key_of_another_movement_is_a_conflict():
    customer = make_customer(balance=10_000)
    services.credit_balance(customer=customer, amount=100, idempotency_key="other:1", source="bonus")
    with pytest.raises(errors.IdempotencyConflict):
        services.take_back(customer=customer, up_to=100, idempotency_key="other:1", description="x")


@pytest.mark.parametrize("up_to", [0, -1, 1.5])
def test_up_to_must_be_positive_kopecks(up_to):
    customer = make_customer(balance=100)
    with pytest.raises(errors.InvalidAmount):
        services.take_back(customer=customer, up_to=up_to, idempotency_key="tb:5", description="x")


@pytest.mark.django_db(transaction=True)
def test_concurrent_take_backs_under_one_key_take_once():
    customer = make_customer(balance=10_000)
    results = run_concurrently(
        lambda i: services.take_back(customer=customer, up_to=6_000, idempotency_key="tb:6", description="x"), 10
    )
    assert {kind for kind, _r in results} == {"ok"}
    assert len({r.pk for _kind, r in results}) == 1
    assert selectors.get_balance(customer) == 4_000
