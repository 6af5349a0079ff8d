"""The admin shows money in roubles and job options in words; job results only to staff who may view jobs."""
import pytest
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse

from billing.models import Account, BalanceAdjustment, Transfer
from billing.money import format_amount
from jobs import services as jobs
from jobs.models import Job, OfferPrice
from tests.helpers import make_customer

pytestmark = pytest.mark.django_db

PICTURE = b"\x89PNG\r\n\x1a\n not really a picture, but bytes to compare"


@pytest.fixture
def finished_job(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    customer = make_customer(balance=150_000)
    job = jobs.submit_job(customer=customer, kind="video_text", prompt="a lighthouse", options={
        "aspect_ratio": "9:16", "duration": 10, "mode": "pro"})
    claimed = jobs.claim_job(job_id=job.pk)
    name = default_storage.save(f"jobs/results/{job.pk}.png", ContentFile(PICTURE))
    jobs.complete_job(job=claimed, result_files=[name], result_mime="image/png")
    return Job.objects.get(pk=job.pk)


def result_url(job, index=0):
    return reverse("admin:jobs_job_result", args=[job.pk, index])


def test_support_sees_the_result_through_the_admin_and_gets_its_bytes(support_client, finished_job):
    page = support_client.get(reverse("admin:jobs_job_change", args=[finished_job.pk]))
    body = page.content.decode()
    assert page.status_code == 200 and f'src="{result_url(finished_job)}"' in body and "/media/" not in body
    response = support_client.get(result_url(finished_job))
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content) == PICTURE
    assert support_client.get(result_url(finished_job, 1)).status_code == 404


def test_nobody_else_gets_a_result(client, django_user_model, finished_job):
    response = client.get(result_url(finished_job))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    client.force_login(django_user_model.objects.create_user("customer-ish", password="pw"))
    assert client.get(result_url(finished_job)).status_code == 302
    client.force_login(django_user_model.objects.create_user("clerk", password="pw", is_staff=True))
    assert client.get(result_url(finished_job)).status_code == 403


def test_job_pages_show_money_in_roubles_and_options_in_words(support_client, finished_job):
    page = support_client.get(reverse("admin:jobs_job_change", args=[finished_job.pk])).content.decode()
    assert "aspect ratio 9:16, portrait; 10 seconds; professional mode" in page
    assert f"{finished_job.cost_estimate // 100}\u00a0₽" in page.replace("&nbsp;", "\u00a0")
    listing = support_client.get(reverse("admin:jobs_job_changelist")).content.decode()
    assert f">{finished_job.cost_estimate // 100}\u00a0₽<" in listing.replace("&nbsp;", "\u00a0")


def test_ledger_and_account_pages_show_roubles(admin_client):
    customer = make_customer(balance=150_000)
    transfer = Transfer.objects.get(customer=customer)
    for url in (reverse("admin:billing_transfer_change", args=[transfer.pk]),
                reverse("admin:billing_account_change", args=[Account.objects.get(customer=customer).pk]),
                reverse("admin:billing_transfer_changelist"), reverse("admin:billing_account_changelist")):
        body = admin_client.get(url).content.decode().replace("&nbsp;", "\u00a0")
        assert "1\u00a0500\u00a0₽" in body and ">150000<" not in body, url


def test_prices_are_shown_and_typed_in_roubles(admin_client):
    price = OfferPrice.objects.get(offer__key="nano-banana", kind="image")
    OfferPrice.objects.filter(pk=price.pk).update(amount=1_550)
    changelist = reverse("admin:jobs_offerprice_changelist") + f"?offer__id__exact={price.offer_id}&kind=image"
    assert 'value="15,50\u00a0₽"' in admin_client.get(changelist).content.decode()
    response = admin_client.post(changelist, {
        "form-TOTAL_FORMS": "1", "form-INITIAL_FORMS": "1", "form-MIN_NUM_FORMS": "0", "form-MAX_NUM_FORMS": "1000",
        "form-0-id": str(price.pk), "form-0-amount": "25", "form-0-cost": "3,20", "_save": "Save",
    })
    assert response.status_code == 302
    price.refresh_from_db()
    assert price.amount == 2_500


def test_payment_and_refund_pages_show_roubles(admin_client, django_user_model):
    from payments.models import Payment, Refund

    customer = make_customer()
    payment = Payment.objects.create(provider="yookassa", customer=customer, amount=150_000,
                                     provider_payment_id="p-1", status="partially_refunded", refunded_amount=50_050)
    refund = Refund.objects.create(payment=payment, amount=50_050, idempotence_key="8f1e9c62-4d5a-4a43-9d1d-0c5a7f3e2b11")
    page = admin_client.get(reverse("admin:payments_payment_change", args=[payment.pk])).content.decode()
    assert "1\u00a0500\u00a0₽" in page and "500,50\u00a0₽" in page and "150000" not in page
    page = admin_client.get(reverse("admin:payments_refund_change", args=[refund.pk])).content.decode()
    assert "500,50\u00a0₽" in page and "50050" not in page


def test_objects_are_named_in_roubles_where_the_admin_links_them(support_client, admin_client, finished_job):
    """A job's reservation, a payment's credit, a price's title: the object's name says roubles too."""
    reservation = finished_job.reservation
    page = support_client.get(reverse("admin:jobs_job_change", args=[finished_job.pk])).content.decode()
    shown = f"#{reservation.pk} pending {format_amount(reservation.amount)} "
    assert shown in page.replace("&nbsp;", "\u00a0") and f"pending {reservation.amount} " not in page
    price = OfferPrice.objects.get(offer__key="nano-banana", kind="image")
    OfferPrice.objects.filter(pk=price.pk).update(amount=1_550)
    title = admin_client.get(reverse("admin:jobs_offerprice_change", args=[price.pk])).content.decode()
    assert "Nano Banana: image/*/*/*: 15,50\u00a0₽" in title.replace("&nbsp;", "\u00a0") and ": 1550" not in title
    adjustment = BalanceAdjustment(pk=5, amount=-50_000, customer_id=2, status="done")
    assert str(adjustment) == "Adjustment #5 -500\u00a0₽ for 2 done"
