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


def _growth_data():
    """Four customers who started now (and one 40 days ago), their payments, jobs, referrals and bonuses."""
    import uuid
    from datetime import timedelta

    from django.utils import timezone

    from billing.models import Customer
    from jobs.models import Job, JobStatus
    from payments.models import Payment, PaymentStatus, Provider, Refund
    from promotions.models import BonusKind, BonusTakeback, PaymentBonus, PromoCode, PromoRedemption, Referral

    now = timezone.now()
    a, b, c, d, old = (make_customer() for _ in range(5))
    Customer.objects.filter(pk=old.pk).update(created_at=now - timedelta(days=40))

    def paid(customer, amount, *, provider=Provider.YOOKASSA, refunded=0):
        status = PaymentStatus.PARTIALLY_REFUNDED if refunded else PaymentStatus.SUCCEEDED
        return Payment.objects.create(
            customer=customer, provider=provider, amount=amount, refunded_amount=refunded, status=status,
            provider_payment_id=str(uuid.uuid4()), succeeded_at=now,
            stars_amount=amount // 100 if provider == Provider.STARS else None,
        )

    def job(customer, provider, charged, cost):
        Job.objects.create(customer=customer, kind="image", provider=provider, prompt="p", offer_key=f"{provider}-x",
                           cost_estimate=charged, cost_actual=charged, provider_cost=cost,
                           status=JobStatus.COMPLETED, completed_at=now)

    first = paid(a, 100_000, refunded=20_000)
    paid(a, 50_000, provider=Provider.STARS)
    paid(b, 30_000)
    paid(c, 10_000)
    paid(old, 70_000)
    job(a, "gemini", 4_000, 1_100)
    job(a, "kling", 20_000, 9_000)
    job(b, "gemini", 4_000, 1_100)
    job(d, "gemini", 1_500, 320)  # ordered on a bonus without ever paying: not in the funnel's later steps
    Referral.objects.create(referrer=a, referee=b)
    Referral.objects.create(referrer=a, referee=d)

    spring = PromoCode.objects.create(code="SPRING", amount=10_000, max_redemptions=10, redemptions_count=2)
    percent = PromoCode.objects.create(code="PLUS10", percent=10, max_redemptions=10, redemptions_count=1)
    for customer in (a, b):
        PromoRedemption.objects.create(promo_code=spring, customer=customer, amount=10_000,
                                       transfer=billing_credit(customer, 10_000, "promo"))
    PromoRedemption.objects.create(promo_code=percent, customer=c, percent=10)
    billing_credit(d, 5_000, "welcome")
    signup = PaymentBonus.objects.create(kind=BonusKind.REFERRAL_SIGNUP, payment=first, beneficiary=a, amount=3_000,
                                         transfer=billing_credit(a, 3_000, "referral_signup"), taken_back=1_000, written_off=2_000)
    refund = Refund.objects.create(payment=first, amount=20_000, idempotence_key=uuid.uuid4())
    taken = services.debit_balance(customer=a, amount=1_000, idempotency_key="bonus-takeback:t", destination="bonus")
    BonusTakeback.objects.create(bonus=signup, refund=refund, taken=1_000, written_off=2_000, transfer=taken)


def billing_credit(customer, amount, source):
    import uuid

    return services.credit_balance(customer=customer, amount=amount, idempotency_key=f"{source}:{uuid.uuid4()}",
                                   source=source)


def test_the_funnel_provider_revenue_and_growth_figures_take_a_few_queries(django_assert_max_num_queries):
    from genbot import dashboard

    _growth_data()
    with django_assert_max_num_queries(7):
        steps = dashboard.funnel(30)
        topups = dashboard.topups_by_provider(30)
        ai = dashboard.model_figures(30, by="provider")
        growth = dashboard.growth_figures(30)
    assert [(s.customers, s.of_previous, s.of_started) for s in steps] == [
        (4, None, None), (3, 75, 75), (2, 67, 50), (1, 50, 25)]
    by_provider = {t.provider: (t.payments, t.paid, t.refunded, t.net) for t in topups}
    assert by_provider == {"yookassa": (4, 210_000, 20_000, 190_000), "stars": (1, 50_000, 0, 50_000)}
    assert [(f.offer_key, f.jobs, f.revenue, f.provider_cost) for f in ai] == [
        ("kling", 1, 20_000, 9_000), ("gemini", 3, 9_500, 2_520)]
    assert (growth.referrals, growth.referees_paid, growth.referral_bonus) == (2, 1, 3_000)
    assert growth.bonus_by_source == {"promo": 20_000, "referral_signup": 3_000, "welcome": 5_000}
    assert (growth.bonus_credited, growth.taken_back, growth.written_off) == (28_000, 1_000, 2_000)
    assert [(r["code"], r["n"], r["amount"]) for r in growth.redemptions] == [("SPRING", 2, 20_000), ("PLUS10", 1, 0)]


def test_admin_home_shows_the_funnel_revenue_by_provider_and_the_growth_figures(admin_client, settings):
    settings.LANGUAGE_CODE = "en"
    _growth_data()
    body = admin_client.get("/admin/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    funnel = body[body.index('id="genbot-funnel"'):body.index('id="genbot-providers"')]
    assert "<td>ordered again</td><td>1</td>" in funnel and "50 %" in funnel and "25 %" in funnel
    providers = body[body.index('id="genbot-providers"'):body.index('id="genbot-growth"')]
    assert "<td>YooKassa</td><td>4</td><td>₽2,100</td><td>₽200</td>" in providers and "₽1,900" in providers
    assert "<td>Telegram Stars</td><td>1</td><td>₽500</td>" in providers
    assert "<td>kling</td><td>1</td><td>₽200</td><td>₽90</td>" in providers and "₽110" in providers
    growth = body[body.index('id="genbot-growth"'):]
    assert "₽280" in growth and "welcome: ₽50" in growth and "SPRING: 2 (₽200)" in growth and "PLUS10: 1" in growth
