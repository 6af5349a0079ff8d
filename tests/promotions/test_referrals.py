"""Referrals: codes, attribution once and for good, the referrer's bonuses and their take-back."""
from datetime import timedelta

import pytest
from django.utils import timezone

from billing import selectors as billing_selectors
from billing.models import Customer, Transfer
from payments.models import Payment
from promotions import selectors, services
from promotions.models import BonusTakeback, PaymentBonus, Referral
from tests.helpers import make_customer, run_concurrently

from .conftest import pay, refund, start_stars, succeed

pytestmark = pytest.mark.django_db


@pytest.fixture
def terms(settings):
    settings.REFERRAL_SIGNUP_BONUS_KOPECKS = 50_00
    settings.REFERRAL_PERCENT = 10
    settings.REFERRAL_MONTHS = 6


def referred(referrer=None):
    referrer = referrer or make_customer()
    referee = make_customer()
    assert services.attribute_referral(customer=referee, code=selectors.referral_code(referrer)) is not None
    return referrer, referee


def make_old(customer):
    Customer.objects.filter(pk=customer.pk).update(created_at=timezone.now() - timedelta(hours=2))
    customer.refresh_from_db()


# --- codes ----------------------------------------------------------------------------------


def test_a_code_is_deterministic_short_alphanumeric_and_names_its_customer():
    customer = make_customer()
    code = selectors.referral_code(customer)
    assert code == selectors.referral_code(Customer.objects.get(pk=customer.pk))
    assert code.isalnum() and code.isascii() and len(code) <= 20
    assert selectors.customer_by_referral_code(code) == customer
    assert selectors.customer_by_referral_code(f" {code.upper()} ") == customer


def test_a_code_cannot_be_walked_or_forged():
    first, second = make_customer(), make_customer()
    code = selectors.referral_code(first)
    walked = selectors.referral_code(second)[:-6] + code[-6:]  # the next id with the first's signature
    assert selectors.customer_by_referral_code(walked) is None
    for junk in ("", "x", "r_" + code, code + "0", "!" * 10, "z" * 40):
        assert selectors.customer_by_referral_code(junk) is None


# --- attribution ----------------------------------------------------------------------------


def test_a_new_customer_is_attributed_once_and_it_is_announced(signals_seen):
    referrer, referee = referred()
    referral = Referral.objects.get(referee=referee)
    assert referral.referrer == referrer
    assert [s["referral"] for s in signals_seen["referral_attributed"]] == [referral]
    other = make_customer()
    assert services.attribute_referral(customer=referee, code=selectors.referral_code(other)) is None
    assert Referral.objects.get(referee=referee).referrer == referrer


def test_attribution_is_refused_for_self_unknown_codes_and_existing_customers(signals_seen):
    me = make_customer()
    assert services.attribute_referral(customer=me, code=selectors.referral_code(me)) is None
    assert services.attribute_referral(customer=me, code="nonsense123") is None
    old = make_customer()
    make_old(old)
    assert services.attribute_referral(customer=old, code=selectors.referral_code(make_customer())) is None
    payer = make_customer()
    pay(payer, 100_00)
    assert services.attribute_referral(customer=payer, code=selectors.referral_code(make_customer())) is None
    assert not Referral.objects.exists() and signals_seen["referral_attributed"] == []


@pytest.mark.django_db(transaction=True)
def test_concurrent_links_attribute_a_customer_to_one_referrer():
    referrers = [make_customer() for _ in range(10)]
    referee = make_customer()
    results = run_concurrently(
        lambda i: services.attribute_referral(customer=referee, code=selectors.referral_code(referrers[i])), 10
    )
    assert {kind for kind, _r in results} == {"ok"}, results
    assert len([r for _kind, r in results if r is not None]) == 1
    assert Referral.objects.filter(referee=referee).count() == 1


# --- bonuses --------------------------------------------------------------------------------


def test_the_first_top_up_brings_the_signup_bonus_and_the_percent_later_ones_the_percent(terms, signals_seen):
    referrer, referee = referred()
    first = pay(referee, 400_00)
    kinds = {b.kind: b for b in selectors.payment_bonuses(first)}
    assert set(kinds) == {"referral_signup", "referral_percent"}
    assert kinds["referral_signup"].amount == 50_00 and kinds["referral_percent"].amount == 40_00
    assert kinds["referral_signup"].transfer.idempotency_key == f"referral-signup:{referee.pk}"
    assert all(b.beneficiary == referrer for b in kinds.values())
    second = pay(referee, 200_00)
    assert [(b.kind, b.amount) for b in selectors.payment_bonuses(second)] == [("referral_percent", 20_00)]
    assert billing_selectors.get_balance(referrer) == 110_00
    assert billing_selectors.get_balance(referee) == 600_00
    credited = [(s["customer"], s["kind"], s["payment"].pk) for s in signals_seen["bonus_credited"]]
    assert credited == [(referrer, "referral_signup", first.pk), (referrer, "referral_percent", first.pk),
                        (referrer, "referral_percent", second.pk)]
    assert selectors.referral_summary(referrer) == selectors.ReferralSummary(joined=1, paid=1, earned=110_00)


def test_no_percent_after_referral_months(terms):
    referrer, referee = referred()
    pay(referee, 100_00)
    Referral.objects.filter(referee=referee).update(created_at=timezone.now() - timedelta(days=200))
    late = pay(referee, 100_00)
    assert selectors.payment_bonuses(late) == []
    assert billing_selectors.get_balance(referrer) == 50_00 + 10_00


def test_calendar_months():
    from datetime import datetime, timezone as tz

    assert selectors.add_months(datetime(2025, 1, 31, 12, tzinfo=tz.utc), 1) == datetime(2025, 2, 28, 12, tzinfo=tz.utc)
    assert selectors.add_months(datetime(2024, 8, 31, tzinfo=tz.utc), 6) == datetime(2025, 2, 28, tzinfo=tz.utc)
    assert selectors.add_months(datetime(2024, 11, 15, tzinfo=tz.utc), 3) == datetime(2025, 2, 15, tzinfo=tz.utc)


def test_a_payment_notified_10_times_brings_one_referral_bonus_each(terms):
    referrer, referee = referred()
    payment = start_stars(referee, 300_00)
    for _ in range(10):
        succeed(Payment.objects.select_related("customer").get(pk=payment.pk))
    assert PaymentBonus.objects.filter(payment=payment).count() == 2
    assert billing_selectors.get_balance(referrer) == 50_00 + 30_00


@pytest.mark.django_db(transaction=True)
def test_a_payment_notified_from_10_threads_brings_one_referral_bonus_each(terms):
    referrer, referee = referred()
    payment = start_stars(referee, 300_00)
    results = run_concurrently(lambda i: succeed(Payment.objects.select_related("customer").get(pk=payment.pk)), 10)
    assert {kind for kind, _r in results} == {"ok"}, results
    assert PaymentBonus.objects.filter(payment=payment).count() == 2
    assert Transfer.objects.filter(source__startswith="referral").count() == 2
    assert billing_selectors.get_balance(referrer) == 50_00 + 30_00


@pytest.mark.django_db(transaction=True)
def test_two_first_top_ups_at_once_bring_one_signup_bonus(terms):
    referrer, referee = referred()
    payments = [start_stars(referee, 100_00) for _ in range(2)]
    results = run_concurrently(lambda i: succeed(payments[i]), 2)
    assert {kind for kind, _r in results} == {"ok"}, results
    assert PaymentBonus.objects.filter(kind="referral_signup").count() == 1
    assert PaymentBonus.objects.filter(kind="referral_percent").count() == 2
    assert billing_selectors.get_balance(referrer) == 50_00 + 2 * 10_00


# --- take-back ------------------------------------------------------------------------------


def test_a_full_refund_takes_the_referral_bonuses_back(terms, signals_seen):
    referrer, referee = referred()
    payment = pay(referee, 400_00)
    refund(payment)
    for bonus in PaymentBonus.objects.filter(payment=payment):
        assert (bonus.taken_back, bonus.written_off) == (bonus.amount, 0)
    assert billing_selectors.get_balance(referrer) == 0
    assert sorted((s["taken"], s["written_off"]) for s in signals_seen["bonus_taken_back"]) == [(40_00, 0), (50_00, 0)]
    assert selectors.referral_summary(referrer).earned == 0


def test_partial_refunds_add_up_to_the_whole_bonus(terms, yookassa_paid):
    referrer, referee = referred()
    payment = yookassa_paid(referee, 300_00)  # signup 50 ₽, percent 30 ₽
    first = refund(payment, 100_00)  # a third
    by_kind = {b.kind: b for b in PaymentBonus.objects.filter(payment=payment)}
    assert by_kind["referral_signup"].taken_back == 16_66 and by_kind["referral_percent"].taken_back == 10_00
    payment.refresh_from_db()
    refund(payment, 200_00)
    for bonus in PaymentBonus.objects.filter(payment=payment):
        assert bonus.taken_back == bonus.amount and bonus.written_off == 0
    assert BonusTakeback.objects.filter(refund=first).count() == 2
    assert BonusTakeback.objects.count() == 4
    assert billing_selectors.get_balance(referrer) == 0


def test_what_the_referrer_already_spent_is_written_off(terms):
    referrer, referee = referred()
    payment = pay(referee, 400_00)  # 90 ₽ to the referrer
    from billing import services as billing

    spent = billing.reserve_balance(customer=referrer, amount=70_00, idempotency_key="job:spent")
    billing.charge_reserved_balance(reservation=spent)
    refund(payment)
    bonuses = PaymentBonus.objects.filter(payment=payment)
    assert sum(b.taken_back for b in bonuses) == 20_00
    assert sum(b.written_off for b in bonuses) == 70_00
    assert billing_selectors.get_balance(referrer) == 0
    assert sorted(t.written_off for t in BonusTakeback.objects.all()) == [30_00, 40_00]  # the signup bonus (older) takes what is left
