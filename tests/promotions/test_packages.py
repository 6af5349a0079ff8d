"""Top-up packages: the bonus fixed when the top-up starts, credited once, taken back on a refund."""
import pytest

from billing import selectors as billing_selectors
from payments import services as payments
from payments.models import Payment
from promotions import selectors, services
from promotions.models import PaymentBonus, TopUpPackage
from tests.helpers import make_customer

from .conftest import pay, refund, start_stars, succeed

pytestmark = pytest.mark.django_db


def test_the_bonus_is_the_largest_active_package_reached(packages):
    assert [p.amount for p in selectors.active_packages()] == [100_00, 300_00, 500_00, 1000_00]
    assert selectors.package_bonus_percent(99_00) == 0
    assert selectors.package_bonus_percent(499_99) == 0
    assert selectors.package_bonus_percent(500_00) == 5
    assert selectors.package_bonus_percent(999_99) == 5
    assert selectors.package_bonus_percent(5000_00) == 10
    TopUpPackage.objects.filter(amount=1000_00).update(is_active=False)
    assert selectors.package_bonus_percent(5000_00) == 5


def test_start_topup_keeps_the_percent_of_that_moment_in_the_payment(packages):
    customer = make_customer()
    payment = start_stars(customer, 1000_00)
    assert Payment.objects.get(pk=payment.pk).metadata == {"bonus_percent": 10}
    TopUpPackage.objects.update(bonus_percent=0)  # staff change the packages meanwhile
    succeed(payment)
    [bonus] = selectors.payment_bonuses(payment)
    assert (bonus.kind, bonus.amount, bonus.beneficiary) == ("package", 100_00, customer)
    assert bonus.transfer.idempotency_key == f"payment-bonus:package:{payment.pk}"
    assert billing_selectors.get_balance(customer) == 1100_00


def test_yookassa_metadata_keeps_the_receipt_contact_too(packages, yookassa_stub, settings):
    settings.YOOKASSA_RECEIPTS = True
    payment = services.start_topup(customer=make_customer(), amount=500_00, provider="yookassa", email="a@b.ru")
    assert Payment.objects.get(pk=payment.pk).metadata == {"bonus_percent": 5, "receipt_customer": {"email": "a@b.ru"}}


def test_create_topup_without_metadata_is_as_before(yookassa_stub):
    payment = payments.create_topup(customer=make_customer(), amount=500_00)
    assert Payment.objects.get(pk=payment.pk).metadata == {}


def test_the_package_bonus_is_credited_once_however_often_the_payment_is_confirmed(packages, signals_seen):
    customer = make_customer()
    payment = start_stars(customer, 500_00)
    for _ in range(5):
        succeed(Payment.objects.select_related("customer").get(pk=payment.pk))
    assert PaymentBonus.objects.filter(payment=payment).count() == 1
    assert billing_selectors.get_balance(customer) == 525_00
    [seen] = signals_seen["bonus_credited"]
    assert (seen["kind"], seen["amount"], seen["balance"]) == ("package", 25_00, 525_00)


def test_a_refund_takes_the_package_bonus_back(packages, signals_seen):
    customer = make_customer()
    payment = pay(customer, 1000_00)
    refund(payment)
    bonus = PaymentBonus.objects.get(payment=payment)
    assert (bonus.taken_back, bonus.written_off) == (100_00, 0)
    assert billing_selectors.get_balance(customer) == 0
    assert [(s["taken"], s["written_off"]) for s in signals_seen["bonus_taken_back"]] == [(100_00, 0)]


def test_a_partial_refund_takes_back_in_proportion_and_the_spent_part_is_written_off(packages, yookassa_paid):
    from billing import services as billing

    customer = make_customer()
    payment = yookassa_paid(customer, 1000_00)  # +100 ₽
    refund(payment, 500_00)
    bonus = PaymentBonus.objects.get(payment=payment)
    assert (bonus.taken_back, bonus.written_off) == (50_00, 0)
    assert billing_selectors.get_balance(customer) == 550_00
    spent = billing.reserve_balance(customer=customer, amount=520_00, idempotency_key="job:p")
    billing.charge_reserved_balance(reservation=spent)
    payment.refresh_from_db()
    refund(payment, 30_00)  # 3 % more refunded: 3 ₽ more of the bonus, all the wallet has
    bonus.refresh_from_db()
    assert (bonus.taken_back, bonus.written_off) == (50_00, 3_00)
    assert billing_selectors.get_balance(customer) == 0


def test_a_bonus_that_fails_is_rolled_back_alone(packages, monkeypatch):
    """A broken bonus step must not cost the payment its credit, its message or its other bonuses."""
    from promotions.services import payment_bonuses

    def broken(payment, facts):
        raise RuntimeError("boom")

    monkeypatch.setattr(payment_bonuses, "_package_bonus", broken)
    referrer, customer = make_customer(), make_customer()
    services.attribute_referral(customer=customer, code=selectors.referral_code(referrer))
    payment = pay(customer, 500_00)
    assert Payment.objects.get(pk=payment.pk).status == "succeeded"
    assert [b.kind for b in selectors.payment_bonuses(payment)] == ["referral_signup", "referral_percent"]
    assert billing_selectors.get_balance(customer) == 500_00
