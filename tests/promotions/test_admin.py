"""The promotions admin: codes created through the service, bonuses read-only, permissions."""
import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from promotions import services
from promotions.models import PaymentBonus, PromoCode, TopUpPackage
from tests.helpers import make_customer

from .conftest import pay, refund

pytestmark = pytest.mark.django_db

PAGES = ["promocode", "topuppackage", "referral", "paymentbonus", "bonustakeback"]


@pytest.fixture
def staff(django_user_model, client):
    user = django_user_model.objects.create_user("promo", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(
        content_type__app_label="promotions", codename__in=[
            "add_promocode", "view_promocode", "change_promocode", "view_topuppackage", "change_topuppackage",
            "view_referral", "view_paymentbonus", "view_bonustakeback",
        ]))
    client.force_login(user)
    return user


def test_the_add_form_creates_a_code_through_the_service(client, staff):
    url = reverse("admin:promotions_promocode_add")
    assert client.get(url).status_code == 200
    answer = client.post(url, {"code": "summer", "amount": "150", "max_redemptions": "10"})
    promo = PromoCode.objects.get()
    assert answer.status_code == 302 and answer.url == reverse("admin:promotions_promocode_change", args=[promo.pk])
    assert (promo.code, promo.amount, promo.created_by) == ("SUMMER", 150_00, staff)


def test_the_add_form_shows_what_the_service_refuses(client, staff):
    answer = client.post(reverse("admin:promotions_promocode_add"),
                         {"code": "BOTH", "amount": "150", "percent": "5", "max_redemptions": "10"})
    assert answer.status_code == 200
    assert "Give either an amount or a percent" in answer.content.decode()
    assert not PromoCode.objects.exists()


def test_every_page_opens_and_a_code_shows_its_redemptions(client, staff):
    services.create_promo_code(code="SHOWN", amount=100_00, max_redemptions=3)
    customer = make_customer(username="redeemer")
    services.redeem_promo_code(customer=customer, code="SHOWN")
    for page in PAGES:
        assert client.get(reverse(f"admin:promotions_{page}_changelist")).status_code == 200, page
    promo = PromoCode.objects.get()
    page = client.get(reverse("admin:promotions_promocode_change", args=[promo.pk])).content.decode()
    assert "@redeemer" in page


def test_bonuses_are_read_only_and_the_written_off_ones_can_be_found(client, staff, settings):
    TopUpPackage.objects.update(bonus_percent=10)
    customer = make_customer()
    payment = pay(customer, 1000_00)
    from billing import services as billing

    spent = billing.reserve_balance(customer=customer, amount=1050_00, idempotency_key="job:a")
    billing.charge_reserved_balance(reservation=spent)
    # Paid money to refund from (bonus money never leaves through a refund), without a bonus of its own.
    TopUpPackage.objects.update(bonus_percent=0)
    pay(customer, 1000_00)
    refund(payment)
    bonus = PaymentBonus.objects.get()
    assert bonus.written_off == 50_00
    listed = client.get(reverse("admin:promotions_paymentbonus_changelist") + "?written_off=yes").content.decode()
    assert f"/{bonus.pk}/change/" in listed
    none = client.get(reverse("admin:promotions_paymentbonus_changelist") + "?written_off=no").content.decode()
    assert f"/{bonus.pk}/change/" not in none
    assert client.get(reverse("admin:promotions_paymentbonus_add")).status_code == 403
    assert client.post(reverse("admin:promotions_paymentbonus_change", args=[bonus.pk]), {}).status_code == 403
    assert client.get(reverse("admin:promotions_paymentbonus_delete", args=[bonus.pk])).status_code == 403


def test_staff_without_the_permissions_see_nothing(client, django_user_model):
    user = django_user_model.objects.create_user("nobody", password="pw", is_staff=True)
    client.force_login(user)
    for page in PAGES:
        assert client.get(reverse(f"admin:promotions_{page}_changelist")).status_code == 403, page
    assert client.get(reverse("admin:promotions_promocode_add")).status_code == 403


def test_packages_are_edited_in_the_list(client, staff):
    package = TopUpPackage.objects.get(amount=1000_00)
    page = client.get(reverse("admin:promotions_topuppackage_changelist"))
    assert page.status_code == 200 and 'name="form-0-bonus_percent"' in page.content.decode()
    assert package.bonus_percent == 10
