"""Promo codes under real concurrency: the cap and the one-per-customer rule hold in the database."""
import pytest

from billing import selectors as billing_selectors
from billing.models import Transfer
from promotions import exceptions as errors
from promotions import services
from promotions.models import PromoCode, PromoRedemption
from tests.helpers import make_customer

from .conftest import run_many

pytestmark = pytest.mark.django_db(transaction=True)


def test_200_customers_racing_for_a_50_use_code_make_exactly_50_credits():
    promo = services.create_promo_code(code="RUSH", amount=100_00, max_redemptions=50)
    customers = [make_customer() for _ in range(200)]
    results = run_many(lambda i: services.redeem_promo_code(customer=customers[i], code="rush"), 200)
    won = [r for kind, r in results if kind == "ok"]
    refused = [r for kind, r in results if kind == "error"]
    assert len(won) == 50
    assert len(refused) == 150 and all(isinstance(e, errors.PromoCodeUsedUp) for e in refused), refused[:3]
    promo.refresh_from_db()
    assert promo.redemptions_count == 50
    assert PromoRedemption.objects.filter(promo_code=promo).count() == 50
    assert Transfer.objects.filter(source="promo").count() == 50
    assert sum(billing_selectors.get_balance(c) for c in customers) == 50 * 100_00


def test_one_customer_redeeming_from_20_threads_is_credited_once(settings):
    # Attempts in flight count against the limit (5 by default): raised here so that all 20 reach
    # the database rule this test is about.
    settings.PROMO_CODE_ATTEMPTS = 100
    promo = services.create_promo_code(code="TWICE", amount=100_00, max_redemptions=50)
    customer = make_customer()
    results = run_many(lambda i: services.redeem_promo_code(customer=customer, code="TWICE"), 20, threads=20)
    won = [r for kind, r in results if kind == "ok"]
    refused = [r for kind, r in results if kind == "error"]
    assert len(won) == 1
    assert all(isinstance(e, errors.PromoCodeAlreadyRedeemed) for e in refused), refused[:3]
    promo.refresh_from_db()
    assert promo.redemptions_count == 1
    assert billing_selectors.get_balance(customer) == 100_00


def test_wrong_codes_tried_at_once_get_no_more_checks_than_the_limit(settings):
    settings.PROMO_CODE_ATTEMPTS = 5
    customer = make_customer()
    results = run_many(lambda i: services.redeem_promo_code(customer=customer, code=f"GUESS{i}"), 20, threads=20)
    errors_seen = [type(r) for _kind, r in results]
    assert errors_seen.count(errors.PromoCodeUnknown) == 5
    assert errors_seen.count(errors.PromoCodeAttemptsExceeded) == 15
