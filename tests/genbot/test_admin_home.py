import pytest

from billing import services
from tests.helpers import make_customer

pytestmark = pytest.mark.django_db


def test_admin_home_shows_today_figures_the_chart_and_the_rq_link(admin_client):
    c = make_customer(balance=50_000)
    r = services.reserve_balance(customer=c, amount=1_500, idempotency_key="j")
    services.charge_reserved_balance(reservation=r)
    page = admin_client.get("/admin/")
    assert page.status_code == 200
    body = page.content.decode()
    assert 'id="genbot-today"' in body and "₽15" in body  # today's revenue
    assert "<polyline" in body and 'href="/django-rq/"' in body


def test_admin_home_needs_staff(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("customer"))
    assert client.get("/admin/").status_code == 302
