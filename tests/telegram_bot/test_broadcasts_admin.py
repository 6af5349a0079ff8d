"""The broadcast page in the admin, through the Django test client: write, preview the audience,
send, watch the figures, cancel; only staff with the broadcast permissions may send."""
import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from telegram_bot import broadcasts
from telegram_bot.models import Broadcast, BroadcastStatus, OutboxMessage, OutboxStatus
from tests.helpers import make_customer

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("english")]


def _staff(django_user_model, *codenames):
    member = django_user_model.objects.create_user("editor", password="pw", is_staff=True)
    member.user_permissions.add(*Permission.objects.filter(content_type__app_label="telegram_bot", codename__in=codenames))
    return member


def _act(client, action, broadcast):
    return client.post(reverse("admin:telegram_bot_broadcast_changelist"),
                       {"action": action, "_selected_action": [broadcast.pk]}, follow=True)


def test_staff_write_a_draft_see_the_audience_send_it_watch_the_figures_and_cancel(client, django_user_model):
    for _ in range(3):
        make_customer(language="en")
    make_customer(language="ru")
    client.force_login(_staff(django_user_model, "add_broadcast", "change_broadcast", "view_broadcast", "send_broadcast"))
    added = client.post(reverse("admin:telegram_bot_broadcast_add"), {
        "text": "  New models are here  ", "language": "en", "joined_via": "", "button_text": "Open",
        "button_url": "https://example.com/new",
    })
    assert added.status_code == 302, added.content.decode()[:3000]
    broadcast = Broadcast.objects.get()
    assert (broadcast.text, broadcast.status, broadcast.created_by.username) == ("New models are here", "draft", "editor")
    page = client.get(reverse("admin:telegram_bot_broadcast_change", args=[broadcast.pk])).content.decode()
    assert "3 customer(s)" in page and 'http-equiv="refresh"' not in page

    done = _act(client, "send_now", broadcast).content.decode()
    assert f"Broadcast #{broadcast.pk} started" in done
    broadcasts.write_audience_batch(broadcast_id=broadcast.pk)  # what the delivery loop does next
    OutboxMessage.objects.filter(pk=OutboxMessage.objects.filter(broadcast=broadcast).first().pk).update(
        status=OutboxStatus.SENT, sent_at=broadcast.created_at)
    page = client.get(reverse("admin:telegram_bot_broadcast_change", args=[broadcast.pk])).content.decode()
    assert 'http-equiv="refresh"' in page and "<th>sent</th><td>1</td>" in page and "<th>queued</th><td>2</td>" in page
    listing = client.get(reverse("admin:telegram_bot_broadcast_changelist")).content.decode()
    assert "sent 1 of 3" in listing

    canceled = _act(client, "cancel", broadcast).content.decode()
    assert "canceled" in canceled
    broadcast.refresh_from_db()
    assert broadcast.status == BroadcastStatus.CANCELED
    assert broadcasts.figures(broadcast).canceled == 2


def test_a_draft_breaking_a_rule_is_refused_on_the_form(client, django_user_model):
    client.force_login(_staff(django_user_model, "add_broadcast", "view_broadcast"))
    page = client.post(reverse("admin:telegram_bot_broadcast_add"), {
        "text": "x", "language": "", "joined_via": "", "button_text": "Open", "button_url": "http://example.com",
    })
    assert page.status_code == 200 and "https://" in page.content.decode()
    assert not Broadcast.objects.exists()


def test_staff_without_the_send_permission_cannot_send_or_cancel(client, django_user_model):
    make_customer()
    broadcast = broadcasts.create_broadcast(acting_user=None, text="Hi")
    client.force_login(_staff(django_user_model, "add_broadcast", "change_broadcast", "view_broadcast"))
    listing = client.get(reverse("admin:telegram_bot_broadcast_changelist")).content.decode()
    assert 'value="send_now"' not in listing and 'value="cancel"' not in listing
    _act(client, "send_now", broadcast)
    assert Broadcast.objects.get(pk=broadcast.pk).status == BroadcastStatus.DRAFT
