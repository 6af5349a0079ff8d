"""billing.selectors.cash_refundable: the wallet's money that came in through payments (rule 5).

Bonus money (and corrections, and opening balances) can be spent, never cashed out; it is
spent first. Each test replays one kind of ledger row against the two buckets.
"""
import itertools

import pytest
from django.contrib.auth import get_user_model

from billing import selectors, services
from billing.staff_keys import ADJUST_NAMESPACE, new_key
from tests.helpers import make_customer

pytestmark = pytest.mark.django_db
_keys = itertools.count()


def credit(customer, amount, source):
    return services.credit_balance(customer=customer, amount=amount, idempotency_key=f"t:{next(_keys)}", source=source)


def debit(customer, amount, destination):
    return services.debit_balance(customer=customer, amount=amount, idempotency_key=f"t:{next(_keys)}",
                                  destination=destination)


def charge(customer, amount):
    reservation = services.reserve_balance(customer=customer, amount=amount, idempotency_key=f"job:{next(_keys)}")
    return services.charge_reserved_balance(reservation=reservation)


def test_only_money_from_the_payment_clearing_accounts_is_cash():
    c = make_customer()
    assert selectors.cash_refundable(c) == 0
    credit(c, 10_000, "yookassa")
    credit(c, 3_000, "stars")
    for source in ("welcome", "promo", "package", "promo_percent", "referral_signup", "referral_percent", "bonus",
                   "legacy"):
        credit(c, 1_000, source)
    assert selectors.get_balance(c) == 21_000
    assert selectors.cash_refundable(c) == 13_000


def test_a_staff_correction_in_is_not_cash_and_one_out_takes_bonus_first():
    c = make_customer()
    staff = get_user_model().objects.create_user("fixer", is_staff=True)
    credit(c, 10_000, "yookassa")
    services.adjust_balance(customer=c, amount=4_000, idempotency_key=new_key(ADJUST_NAMESPACE), staff_user=staff,
                            reason="goodwill")
    assert selectors.cash_refundable(c) == 10_000
    services.adjust_balance(customer=c, amount=-5_000, idempotency_key=new_key(ADJUST_NAMESPACE), staff_user=staff,
                            reason="mistake")
    assert selectors.cash_refundable(c) == 9_000  # the 4,000 of bonus went first, then 1,000 of cash


def test_jobs_spend_bonus_first_then_cash_and_pending_holds_count_as_spent():
    c = make_customer()
    credit(c, 3_000, "welcome")
    credit(c, 10_000, "yookassa")
    charge(c, 2_000)
    assert selectors.cash_refundable(c) == 10_000  # bonus 1,000 left
    charge(c, 4_000)
    assert selectors.cash_refundable(c) == 7_000  # bonus gone, then 3,000 of cash
    services.reserve_balance(customer=c, amount=5_000, idempotency_key="job:open")
    assert selectors.cash_refundable(c) == 2_000
    released = services.reserve_balance(customer=c, amount=2_000, idempotency_key="job:released")
    services.refund_balance(reservation=released)
    assert selectors.cash_refundable(c) == 2_000  # a released hold spends nothing


def test_a_charge_below_its_hold_spends_only_what_it_charged():
    c = make_customer()
    credit(c, 10_000, "yookassa")
    reservation = services.reserve_balance(customer=c, amount=6_000, idempotency_key="job:partial")
    assert selectors.cash_refundable(c) == 4_000
    services.charge_reserved_balance(reservation=reservation, amount=1_000)
    assert selectors.cash_refundable(c) == 9_000


def test_a_take_back_of_a_bonus_takes_bonus_first_and_cash_only_for_a_spent_bonus():
    c = make_customer()
    credit(c, 10_000, "yookassa")
    credit(c, 2_000, "package")
    debit(c, 1_500, "bonus")
    assert selectors.cash_refundable(c) == 10_000
    charge(c, 500)  # the last of the bonus
    debit(c, 1_000, "bonus")  # a bonus already spent is taken back out of cash
    assert selectors.cash_refundable(c) == 9_000 == selectors.get_balance(c)


def test_a_refund_debit_takes_cash_and_a_failed_refunds_reversal_gives_it_back():
    c = make_customer()
    credit(c, 10_000, "yookassa")
    credit(c, 5_000, "promo")
    debit(c, 4_000, "yookassa")  # a refund's debit
    assert selectors.cash_refundable(c) == 6_000
    credit(c, 4_000, "yookassa")  # the refund failed: its reversal
    assert selectors.cash_refundable(c) == 10_000
    assert selectors.get_balance(c) == 15_000


def test_the_figure_never_exceeds_the_available_balance():
    c = make_customer()
    credit(c, 10_000, "stars")
    services.reserve_balance(customer=c, amount=9_000, idempotency_key="job:big")
    assert selectors.cash_refundable(c) == 1_000 == selectors.get_balance(c)
