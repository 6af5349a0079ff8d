"""Promo codes: one per customer, a total cap, a validity window; wrong ones read alike and are limited."""
from datetime import timedelta

import pytest
from django.utils import timezone

from billing import selectors as billing_selectors
from billing.models import Transfer
from promotions import exceptions as errors
from promotions import selectors, services
from promotions.models import PromoCode, PromoRedemption
from promotions.services import attempts
from tests.helpers import free_port, make_customer

from .conftest import pay

pytestmark = pytest.mark.django_db


def code(name="SPRING", **kwargs):
    kwargs.setdefault("amount", 100_00)
    kwargs.setdefault("max_redemptions", 10)
    return services.create_promo_code(code=name, **kwargs)


def test_create_stores_the_code_upper_case():
    promo = services.create_promo_code(code="  spring-25 ", percent=25, max_redemptions=3)
    assert promo.code == "SPRING-25" and promo.percent == 25 and promo.amount == 0


@pytest.mark.parametrize("kwargs", [
    {"code": "no spaces", "amount": 1},
    {"code": "AB", "amount": 1},
    {"code": "BOTH", "amount": 100, "percent": 5},
    {"code": "NEITHER"},
    {"code": "TOOMUCH", "percent": 101},
    {"code": "NOUSES", "amount": 100, "max_redemptions": 0},
])
def test_create_refuses_what_the_rules_refuse(kwargs):
    kwargs.setdefault("max_redemptions", 1)
    with pytest.raises(errors.InvalidPromoCode):
        services.create_promo_code(**kwargs)
    assert not PromoCode.objects.exists()


def test_create_refuses_an_empty_window_and_a_taken_code():
    now = timezone.now()
    with pytest.raises(errors.InvalidPromoCode):
        code(valid_from=now, valid_until=now)
    code("TAKEN")
    with pytest.raises(errors.InvalidPromoCode, match="exists"):
        code("taken")


def test_an_amount_code_credits_at_once_matched_case_insensitively(signals_seen):
    promo = code("SPRING")
    customer = make_customer()
    redemption = services.redeem_promo_code(customer=customer, code="  spring ")
    assert redemption.transfer.idempotency_key == f"promo:{redemption.pk}"
    assert billing_selectors.get_balance(customer) == 100_00
    promo.refresh_from_db()
    assert promo.redemptions_count == 1
    [seen] = signals_seen["bonus_credited"]
    assert (seen["kind"], seen["amount"], seen["balance"]) == ("promo", 100_00, 100_00)


def test_a_second_redemption_by_the_same_customer_is_refused():
    code("ONCE")
    customer = make_customer()
    services.redeem_promo_code(customer=customer, code="ONCE")
    with pytest.raises(errors.PromoCodeAlreadyRedeemed):
        services.redeem_promo_code(customer=customer, code="once")
    assert billing_selectors.get_balance(customer) == 100_00


def test_unknown_expired_not_yet_switched_off_used_up_and_not_for_you_read_alike():
    now = timezone.now()
    code("OLD", valid_until=now - timedelta(minutes=1))
    code("LATER", valid_from=now + timedelta(days=1))
    code("OFF").__class__.objects.filter(code="OFF").update(is_active=False)
    code("GONE", max_redemptions=1)
    services.redeem_promo_code(customer=make_customer(), code="GONE")
    code("NEWBIES", new_customers_only=True)
    payer = make_customer()
    pay(payer, 100_00)

    messages = set()
    for name, who, kind in [
        ("NOSUCH", make_customer(), errors.PromoCodeUnknown),
        ("OLD", make_customer(), errors.PromoCodeExpired),
        ("LATER", make_customer(), errors.PromoCodeExpired),
        ("OFF", make_customer(), errors.PromoCodeExpired),
        ("GONE", make_customer(), errors.PromoCodeUsedUp),
        ("NEWBIES", payer, errors.PromoCodeNotForCustomer),
    ]:
        with pytest.raises(kind) as caught:
            services.redeem_promo_code(customer=who, code=name)
        assert isinstance(caught.value, errors.PromoCodeNotValid)
        messages.add(str(caught.value))
    assert messages == {"This promo code does not work. Check it and try again."}
    assert PromoRedemption.objects.count() == 1  # GONE's one redemption
    assert PromoCode.objects.get(code="GONE").redemptions_count == 1


def test_too_many_wrong_codes_are_refused_without_looking_at_the_code(settings):
    settings.PROMO_CODE_ATTEMPTS = 3
    settings.PROMO_CODE_ATTEMPT_WINDOW = 600
    code("RIGHT")
    customer = make_customer()
    for _ in range(3):
        with pytest.raises(errors.PromoCodeNotValid):
            services.redeem_promo_code(customer=customer, code="WRONG")
    with pytest.raises(errors.PromoCodeAttemptsExceeded) as caught:
        services.redeem_promo_code(customer=customer, code="RIGHT")
    assert caught.value.params == {"minutes": 10}
    assert str(caught.value) == "Too many promo code attempts. Try again in 10 min."
    assert billing_selectors.get_balance(customer) == 0
    # Another customer has their own attempts.
    services.redeem_promo_code(customer=make_customer(), code="RIGHT")


def test_right_codes_and_repeats_do_not_count_as_wrong_attempts(settings):
    settings.PROMO_CODE_ATTEMPTS = 2
    for name in ("ONE", "TWO", "THREE"):
        code(name)
    customer = make_customer()
    for name in ("ONE", "TWO", "THREE"):
        services.redeem_promo_code(customer=customer, code=name)
    for _ in range(3):
        with pytest.raises(errors.PromoCodeAlreadyRedeemed):
            services.redeem_promo_code(customer=customer, code="ONE")
    with pytest.raises(errors.PromoCodeUnknown):
        services.redeem_promo_code(customer=customer, code="FOUR")


def test_the_attempt_window_ends(settings):
    settings.PROMO_CODE_ATTEMPTS = 1
    settings.PROMO_CODE_ATTEMPT_WINDOW = 1
    code("LATE")
    customer = make_customer()
    with pytest.raises(errors.PromoCodeUnknown):
        services.redeem_promo_code(customer=customer, code="EARLY")
    with pytest.raises(errors.PromoCodeAttemptsExceeded):
        services.redeem_promo_code(customer=customer, code="LATE")
    import time

    time.sleep(2.1)
    services.redeem_promo_code(customer=customer, code="LATE")


def test_without_redis_no_code_is_checked(settings):
    code("MONEY")
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    attempts.reset_client()
    customer = make_customer()
    with pytest.raises(errors.PromoCodesUnavailable):
        services.redeem_promo_code(customer=customer, code="MONEY")
    assert billing_selectors.get_balance(customer) == 0
    assert not PromoRedemption.objects.exists()


def test_a_percent_code_waits_and_goes_to_the_next_top_up_only(signals_seen):
    services.create_promo_code(code="PLUS20", percent=20, max_redemptions=5)
    customer = make_customer()
    redemption = services.redeem_promo_code(customer=customer, code="plus20")
    assert redemption.transfer is None and billing_selectors.get_balance(customer) == 0
    assert selectors.pending_promo_percent(customer) == 20
    assert signals_seen["bonus_credited"] == []

    first = pay(customer, 400_00)  # the 300 ₽ package: no package bonus
    second = pay(customer, 400_00)
    redemption.refresh_from_db()
    assert redemption.applied_payment_id == first.pk
    assert selectors.pending_promo_percent(customer) == 0
    [bonus] = selectors.payment_bonuses(first)
    assert (bonus.kind, bonus.amount, bonus.beneficiary_id) == ("promo_percent", 80_00, customer.pk)
    assert bonus.transfer.idempotency_key == f"payment-bonus:promo_percent:{first.pk}"
    assert selectors.payment_bonuses(second) == []
    assert billing_selectors.get_balance(customer) == 880_00
    assert [s["kind"] for s in signals_seen["bonus_credited"]] == ["promo_percent"]
    assert signals_seen["bonus_credited"][0]["payment"].pk == first.pk


def test_two_percent_codes_go_to_two_top_ups_oldest_first():
    services.create_promo_code(code="TEN", percent=10, max_redemptions=5)
    services.create_promo_code(code="FIVE", percent=5, max_redemptions=5)
    customer = make_customer()
    services.redeem_promo_code(customer=customer, code="TEN")
    services.redeem_promo_code(customer=customer, code="FIVE")
    first, second = pay(customer, 100_00), pay(customer, 100_00)
    assert [b.amount for b in selectors.payment_bonuses(first)] == [10_00]
    assert [b.amount for b in selectors.payment_bonuses(second)] == [5_00]
    assert not Transfer.objects.filter(source="promo").exists()


def test_the_customers_messages_are_in_russian_too():
    from django.utils import translation

    with translation.override("ru"):
        assert str(errors.PromoCodeUsedUp()) == "Этот промокод не действует. Проверьте его и попробуйте ещё раз."
        assert str(errors.PromoCodeAttemptsExceeded(minutes=5)).endswith("через 5 мин.")
        assert str(errors.PromoCodesUnavailable()).startswith("Сейчас промокоды")
