"""The money rules of billing.services, one test a rule."""
import pytest
from django.db import IntegrityError, transaction

from billing import exceptions as errors
from billing import selectors, services
from billing.models import Account, Transfer, TransferKind
from billing.staff_keys import ADJUST_NAMESPACE, new_key
from promotions.audience import broadcast_audience
from tests.helpers import make_customer

pytestmark = pytest.mark.django_db


def test_get_or_create_customer_creates_one_customer_with_one_wallet_and_refreshes_profile():
    first = services.get_or_create_customer(telegram_id=42, username="ann", language="en-GB")
    again = services.get_or_create_customer(telegram_id=42, username="ann_new")
    assert first.pk == again.pk
    assert again.username == "ann_new" and again.language == "en"
    assert Account.objects.filter(customer=first).count() == 1
    assert selectors.get_balance(first) == 0


def test_credit_balance_adds_money_and_keeps_the_books_at_zero():
    c = make_customer()
    services.credit_balance(customer=c, amount=15_000, idempotency_key="t1", source="yookassa")
    assert selectors.get_balance(c) == 15_000
    assert selectors.total_of_all_accounts() == 0
    assert Account.objects.get(code="yookassa").balance == -15_000


def test_same_idempotency_key_and_arguments_returns_the_first_transfer_and_moves_nothing():
    c = make_customer()
    t1 = services.credit_balance(customer=c, amount=10_000, idempotency_key="k", source="yookassa")
    t2 = services.credit_balance(customer=c, amount=10_000, idempotency_key="k", source="yookassa")
    assert t1.pk == t2.pk
    assert selectors.get_balance(c) == 10_000
    assert Transfer.objects.count() == 1


def test_same_idempotency_key_with_other_arguments_raises_conflict_and_moves_nothing():
    c = make_customer()
    services.credit_balance(customer=c, amount=10_000, idempotency_key="k", source="yookassa")
    with pytest.raises(errors.IdempotencyConflict):
        services.credit_balance(customer=c, amount=20_000, idempotency_key="k", source="yookassa")
    with pytest.raises(errors.IdempotencyConflict):
        services.reserve_balance(customer=c, amount=10_000, idempotency_key="k")
    other = make_customer()
    with pytest.raises(errors.IdempotencyConflict):
        services.credit_balance(customer=other, amount=10_000, idempotency_key="k", source="yookassa")
    assert selectors.get_balance(c) == 10_000
    assert selectors.get_balance(other) == 0


@pytest.mark.parametrize("amount", [0, -1, 1.5, "100", True, 10**15])
def test_amounts_that_are_not_positive_whole_kopecks_are_refused(amount):
    c = make_customer(balance=1000)
    with pytest.raises(errors.InvalidAmount):
        services.credit_balance(customer=c, amount=amount, idempotency_key="bad", source="bonus")
    with pytest.raises(errors.InvalidAmount):
        services.reserve_balance(customer=c, amount=amount, idempotency_key="bad2")
    assert selectors.get_balance(c) == 1000


def test_reserve_holds_money_and_refuses_more_than_available():
    c = make_customer(balance=1_000)
    r = services.reserve_balance(customer=c, amount=600, idempotency_key="job:1")
    assert r.kind == TransferKind.PENDING
    assert selectors.get_balance(c) == 400
    assert selectors.get_held(c) == 600
    with pytest.raises(errors.InsufficientFunds) as exc:
        services.reserve_balance(customer=c, amount=401, idempotency_key="job:2")
    assert exc.value.available == 400 and exc.value.required == 401
    assert selectors.get_balance(c) == 400
    assert not Transfer.objects.filter(idempotency_key="job:2").exists()


def test_charge_posts_the_actual_cost_and_releases_the_rest():
    c = make_customer(balance=1_000)
    r = services.reserve_balance(customer=c, amount=600, idempotency_key="job:1")
    post = services.charge_reserved_balance(reservation=r, amount=450)
    assert post.kind == TransferKind.POST and post.pending_id == r.pk and post.amount == 450
    assert selectors.get_balance(c) == 550
    assert selectors.get_held(c) == 0
    assert Account.objects.get(code="revenue").balance == 450
    assert selectors.total_of_all_accounts() == 0


def test_charge_defaults_to_the_whole_reservation():
    c = make_customer(balance=1_000)
    r = services.reserve_balance(customer=c, amount=600, idempotency_key="job:1")
    services.charge_reserved_balance(reservation=r)
    assert selectors.get_balance(c) == 400


def test_charging_twice_moves_money_once():
    c = make_customer(balance=1_000)
    r = services.reserve_balance(customer=c, amount=600, idempotency_key="job:1")
    first = services.charge_reserved_balance(reservation=r, amount=500)
    second = services.charge_reserved_balance(reservation=r, amount=500)
    assert first.pk == second.pk
    assert selectors.get_balance(c) == 500
    with pytest.raises(errors.IdempotencyConflict):
        services.charge_reserved_balance(reservation=r, amount=300)
    assert selectors.get_balance(c) == 500


def test_charge_above_the_held_amount_raises_and_moves_nothing():
    c = make_customer(balance=1_000)
    r = services.reserve_balance(customer=c, amount=600, idempotency_key="job:1")
    with pytest.raises(errors.ChargeExceedsReservation):
        services.charge_reserved_balance(reservation=r, amount=601)
    assert (selectors.get_balance(c), selectors.get_held(c)) == (400, 600)


def test_refund_voids_the_reservation_and_twice_is_once():
    c = make_customer(balance=1_000)
    r = services.reserve_balance(customer=c, amount=600, idempotency_key="job:1")
    v1 = services.refund_balance(reservation=r)
    v2 = services.refund_balance(reservation=r)
    assert v1.pk == v2.pk and v1.kind == TransferKind.VOID
    assert (selectors.get_balance(c), selectors.get_held(c)) == (1_000, 0)


def test_charging_a_voided_reservation_raises_and_moves_nothing():
    c = make_customer(balance=1_000)
    r = services.reserve_balance(customer=c, amount=600, idempotency_key="job:1")
    services.refund_balance(reservation=r)
    with pytest.raises(errors.ReservationAlreadyVoided):
        services.charge_reserved_balance(reservation=r)
    assert selectors.get_balance(c) == 1_000
    assert Account.objects.get(code="revenue").balance == 0


def test_voiding_a_posted_reservation_raises_and_moves_nothing():
    c = make_customer(balance=1_000)
    r = services.reserve_balance(customer=c, amount=600, idempotency_key="job:1")
    services.charge_reserved_balance(reservation=r)
    with pytest.raises(errors.ReservationAlreadyPosted):
        services.refund_balance(reservation=r)
    assert selectors.get_balance(c) == 400


def test_charge_of_zero_releases_the_whole_reservation():
    c = make_customer(balance=1_000)
    r = services.reserve_balance(customer=c, amount=600, idempotency_key="job:1")
    settled = services.charge_reserved_balance(reservation=r, amount=0)
    assert settled.kind == TransferKind.VOID
    assert selectors.get_balance(c) == 1_000


def test_adjust_balance_adds_and_takes_but_never_below_zero(django_user_model):
    ADJ = {k: new_key(ADJUST_NAMESPACE) for k in ("adj:1", "adj:2", "adj:3", "adj:4")}
    staff = django_user_model.objects.create_user("support", is_staff=True)
    c = make_customer(balance=1_000)
    services.adjust_balance(customer=c, amount=500, idempotency_key=ADJ["adj:1"], staff_user=staff, reason="goodwill")
    services.adjust_balance(customer=c, amount=-300, idempotency_key=ADJ["adj:2"], staff_user=staff, reason="typo")
    assert selectors.get_balance(c) == 1_200
    with pytest.raises(errors.InsufficientFunds):
        services.adjust_balance(customer=c, amount=-1_201, idempotency_key=ADJ["adj:3"], staff_user=staff, reason="x")
    with pytest.raises(errors.InvalidAmount):
        services.adjust_balance(customer=c, amount=100, idempotency_key=ADJ["adj:4"], staff_user=staff, reason=" ")
    assert selectors.get_balance(c) == 1_200
    audit = Transfer.objects.get(idempotency_key=ADJ["adj:2"])
    assert audit.staff_user == staff and audit.description == "typo"


def test_adjust_cannot_take_held_money():
    c = make_customer(balance=1_000)
    services.reserve_balance(customer=c, amount=800, idempotency_key="job:1")
    with pytest.raises(errors.InsufficientFunds):
        services.adjust_balance(customer=c, amount=-300, idempotency_key=new_key(ADJUST_NAMESPACE), staff_user=None, reason="x")


def test_debit_balance_refuses_money_already_spent():
    c = make_customer(balance=1_000)
    r = services.reserve_balance(customer=c, amount=800, idempotency_key="job:1")
    services.charge_reserved_balance(reservation=r)
    with pytest.raises(errors.InsufficientFunds):
        services.debit_balance(customer=c, amount=500, idempotency_key="refund:1", destination="yookassa")
    services.debit_balance(customer=c, amount=200, idempotency_key="refund:2", destination="yookassa")
    assert selectors.get_balance(c) == 0


def test_database_refuses_a_wallet_holding_more_than_its_balance():
    c = make_customer(balance=100)
    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.filter(customer=c).update(held=101)


def test_database_refuses_a_transfer_of_zero_or_to_itself():
    c = make_customer(balance=100)
    wallet = Account.objects.get(customer=c)
    with pytest.raises(IntegrityError), transaction.atomic():
        Transfer.objects.create(idempotency_key="z", kind="single", debit_account=wallet,
                                credit_account=services.system_account("bonus"), amount=0)
    with pytest.raises(IntegrityError), transaction.atomic():
        Transfer.objects.create(idempotency_key="s", kind="single", debit_account=wallet,
                                credit_account=wallet, amount=5)


def test_ledger_history_is_newest_first_with_signed_amounts():
    c = make_customer(balance=1_000)
    r = services.reserve_balance(customer=c, amount=300, idempotency_key="job:1", description="picture")
    services.charge_reserved_balance(reservation=r)
    history = list(selectors.get_ledger_history(c, limit=10))
    assert [t.kind for t in history] == ["post", "pending", "single"]
    assert [t.signed_amount for t in history] == [-300, 0, 1_000]
    assert len(selectors.get_ledger_history(c, limit=2)) == 2


def test_a_customer_who_blocked_the_bot_is_marked_and_unmarked_when_they_write_again():
    c = make_customer(username="ann")
    services.mark_bot_blocked(customer=c)
    c.refresh_from_db()
    assert c.bot_blocked_at is not None and not c.is_blocked
    assert not broadcast_audience().filter(pk=c.pk).exists()
    services.get_or_create_customer(telegram_id=c.telegram_id, username="ann")
    c.refresh_from_db()
    assert c.bot_blocked_at is None
    assert broadcast_audience().filter(pk=c.pk).exists()
