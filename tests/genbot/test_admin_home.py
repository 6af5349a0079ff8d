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


def test_admin_home_shows_revenue_against_provider_cost_per_model_for_30_days(admin_client, settings):
    from datetime import timedelta

    from django.utils import timezone

    from jobs.models import Job, JobStatus

    settings.LANGUAGE_CODE = "en"
    c = make_customer(balance=50_000)
    now = timezone.now()

    def job(offer_key, charged, cost, *, days_ago=0, status=JobStatus.COMPLETED):
        return Job.objects.create(customer=c, kind="image", provider="fake", prompt="p", offer_key=offer_key,
                                  cost_estimate=charged, cost_actual=charged if status == JobStatus.COMPLETED else None,
                                  provider_cost=cost, status=status, completed_at=now - timedelta(days=days_ago))

    job("nano-banana-pro", 6_500, 1_970)
    job("nano-banana-pro", 4_000, 1_100, days_ago=29)
    job("nano-banana-pro", 4_000, 1_100, days_ago=31)  # too old
    job("nano-banana", 1_500, 320)
    job("nano-banana", 1_500, 320, status=JobStatus.FAILED)  # refunded: neither revenue nor cost
    body = admin_client.get("/admin/").content.decode()
    section = body[body.index('id="genbot-models"'):]
    rows = [row.split("</tr>")[0] for row in section.split("<tr>")[2:4]]
    assert "nano-banana-pro" in rows[0] and "<td>2</td>" in rows[0] and "₽105" in rows[0]
    assert "₽30.70" in rows[0] and "₽74.30" in rows[0]  # the providers' cost, the margin
    assert "nano-banana" in rows[1] and "<td>1</td>" in rows[1] and "₽15" in rows[1] and "₽3.20" in rows[1]


def test_an_offers_page_shows_its_effective_price_table_in_roubles(admin_client):
    from django.urls import reverse

    from jobs.models import Offer

    offer = Offer.objects.get(key="nano-banana-pro")
    body = admin_client.get(reverse("admin:jobs_offer_change", args=[offer.pk])).content.decode().replace("&nbsp;", "\u00a0")
    table = body[body.index("genbot-price-table"):]
    # Pictures and edits at 1K, 2K and 4K: 40 ₽, 40 ₽, 65 ₽; the provider's 11 ₽ and 19,70 ₽.
    assert table.count("<tr><td>") == 6
    assert "size 4K</td><td>65\u00a0₽</td><td>19,70\u00a0₽</td><td>45,30\u00a0₽</td>" in table
    assert "size 2K</td><td>40\u00a0₽</td><td>11\u00a0₽</td><td>29\u00a0₽</td>" in table
