"""Support's customer page and its actions, through the Django test client; messages go through
the real sender to the local Bot API sandbox."""
import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from billing.models import Customer
from jobs.services import submit_job
from payments.models import Payment
from tests.helpers import make_customer

pytestmark = pytest.mark.django_db


def changelist_action(client, action, customers, **extra):
    return client.post(
        reverse("admin:billing_customer_changelist"),
        {"action": action, "_selected_action": [c.pk for c in customers], **extra},
    )


def test_customer_page_shows_money_payments_and_jobs(admin_client):
    c = make_customer(balance=50_000)
    Payment.objects.create(provider="yookassa", provider_payment_id="p-1", customer=c, amount=50_000, status="succeeded")
    job = submit_job(customer=c, kind="image", prompt="a red fox")
    page = admin_client.get(reverse("admin:billing_customer_change", args=[c.pk]))
    body = page.content.decode()
    assert page.status_code == 200
    assert "Payments" in body and "Jobs" in body and "Ledger" in body
    assert f"/admin/jobs/job/{job.pk}/change/" in body


def test_block_and_unblock_are_audited(admin_client):
    c = make_customer()
    changelist_action(admin_client, "block", [c])
    assert Customer.objects.get(pk=c.pk).is_blocked
    changelist_action(admin_client, "unblock", [c])
    assert not Customer.objects.get(pk=c.pk).is_blocked
    assert list(LogEntry.objects.filter(object_id=str(c.pk)).values_list("change_message", flat=True)) == [
        "unblocked", "blocked"]


def test_send_message_delivers_through_the_sender_and_counts_blocked_bots(admin_client, sandbox):
    ann, bob = make_customer(telegram_id=5551), make_customer(telegram_id=5552)
    sandbox.state.blocked_chats.add(5552)
    form = changelist_action(admin_client, "send_message", [ann, bob])
    assert form.status_code == 200 and "Message 2 customer(s)" in form.content.decode()
    done = changelist_action(admin_client, "send_message", [ann, bob], text="Maintenance at 3:00")
    assert done.status_code == 302
    assert [m["text"] for m in sandbox.state.bot_messages(5551)] == ["Maintenance at 3:00"]
    assert sandbox.state.bot_messages(5552) == []
    follow = admin_client.get(done["Location"]).content.decode()
    assert "Delivered 1, the bot is blocked by 1, failed 0" in follow


def test_staff_without_change_permission_cannot_block(client, django_user_model):
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create_user("viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_customer"))
    client.force_login(viewer)
    c = make_customer()
    changelist_action(client, "block", [c])
    assert not Customer.objects.get(pk=c.pk).is_blocked
