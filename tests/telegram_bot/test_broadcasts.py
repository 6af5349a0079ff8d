"""Broadcasts: the audience filters, the preview, schedule, cancel, live figures, a 403, a picture
and a button as Telegram gets them, the exactly-once rule on the wire, and ``manage.py broadcast``.
Messages go through the real delivery loop and sender to the local Bot API sandbox."""
from __future__ import annotations

import io
import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command
from django.utils import timezone
from PIL import Image

from billing.models import Customer
from payments.models import Payment, PaymentStatus
from promotions.audience import broadcast_audience
from promotions.models import PromoCode, PromoRedemption, Referral
from telegram_bot import broadcasts
from telegram_bot.delivery import OutboxDelivery, reclaim_stale_rows
from telegram_bot.exceptions import BroadcastNotPermitted, BroadcastStateConflict, InvalidBroadcast
from telegram_bot.models import Broadcast, BroadcastStatus, OutboxMessage, OutboxStatus
from telegram_bot import outbox
from tests.helpers import make_customer, wait_until

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("english")]


def _new(**fields) -> Broadcast:
    return broadcasts.create_broadcast(acting_user=None, **{"text": "News", **fields})


def _send(broadcast: Broadcast, *, threads: int = 4, timeout: float = 30) -> broadcasts.BroadcastFigures:
    """Start it and run a delivery loop until it is done."""
    broadcasts.start_broadcast(acting_user=None, broadcast=broadcast)
    delivery = OutboxDelivery(threads=threads, poll_interval=0.05).start()
    try:
        wait_until(lambda: Broadcast.objects.get(pk=broadcast.pk).status == BroadcastStatus.DONE, timeout=timeout,
                   message="the broadcast to finish")
    finally:
        delivery.stop()
    return broadcasts.figures(broadcast)


def _picture() -> ContentFile:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (20, 120, 200)).save(buffer, "PNG")
    return ContentFile(buffer.getvalue(), name="sale.png")


# --- the audience ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_each_audience_filter_chooses_its_customers():
    ru, en = make_customer(language="ru"), make_customer(language="en")
    payer = make_customer()
    Payment.objects.create(provider="yookassa", provider_payment_id="p-b1", customer=payer, amount=10_000, refunded_amount=10_000,
                           status=PaymentStatus.REFUNDED)  # paid once, refunded since: still paid once
    Payment.objects.create(provider="yookassa", provider_payment_id="p-b2", customer=ru, amount=10_000,
                           status=PaymentStatus.CANCELED)
    idle = make_customer()
    Customer.objects.filter(pk=idle.pk).update(updated_at=timezone.now() - timedelta(days=40))
    referee, redeemer = make_customer(), make_customer()
    Referral.objects.create(referrer=ru, referee=referee)
    code = PromoCode.objects.create(code="HELLO", amount=100, max_redemptions=10)
    PromoRedemption.objects.create(promo_code=code, customer=redeemer, amount=100)
    gone = make_customer()
    Customer.objects.filter(pk=gone.pk).update(bot_blocked_at=timezone.now())
    banned = make_customer()
    Customer.objects.filter(pk=banned.pk).update(is_blocked=True)

    def chosen(**filters) -> set[int]:
        return set(broadcast_audience(**filters).values_list("pk", flat=True))

    everyone = {c.pk for c in (ru, en, payer, idle, referee, redeemer)}
    assert chosen() == everyone
    assert chosen(language="en") == {en.pk}
    assert chosen(paid_at_least_once=True) == {payer.pk}
    assert chosen(active_days=30) == everyone - {idle.pk}
    assert chosen(joined_via="referral") == {referee.pk}
    assert chosen(joined_via="promo") == {redeemer.pk}
    assert chosen(joined_via="either") == {referee.pk, redeemer.pk}
    assert chosen(include_blocked=True) == everyone | {gone.pk}  # never the ones staff blocked
    assert chosen(language="ru", joined_via="either", active_days=30) == {referee.pk, redeemer.pk}


@pytest.mark.django_db
def test_the_preview_counts_the_audience_the_filters_choose():
    for _ in range(3):
        make_customer(language="en")
    make_customer(language="ru")
    broadcast = _new(language="en")
    assert broadcasts.audience_count(broadcast) == 3
    assert broadcasts.audience_count(Broadcast(text="x")) == 4


@pytest.mark.django_db
@pytest.mark.parametrize("fields, error", [
    ({"text": "  "}, "empty"),
    ({"text": "x" * 4097}, "4096"),
    ({"text": "x" * 1025, "picture": "pic"}, "1024"),
    ({"button_text": "Open"}, "both"),
    ({"button_text": "Open", "button_url": "http://example.com"}, "https"),
    ({"active_days": 0}, "at least 1"),
])
def test_a_broadcast_that_breaks_a_telegram_limit_or_a_rule_is_refused(fields, error):
    if fields.get("picture"):
        fields["picture"] = _picture()
    with pytest.raises(InvalidBroadcast, match=error):
        _new(**fields)
    assert not Broadcast.objects.exists()


@pytest.mark.django_db
def test_staff_without_the_broadcast_permission_cannot_send_schedule_or_cancel(support):
    broadcast = _new()
    with pytest.raises(BroadcastNotPermitted):
        broadcasts.start_broadcast(acting_user=support, broadcast=broadcast)
    with pytest.raises(BroadcastNotPermitted):
        broadcasts.schedule_broadcast(acting_user=support, broadcast=broadcast, send_at=timezone.now() + timedelta(hours=1))
    assert Broadcast.objects.get(pk=broadcast.pk).status == BroadcastStatus.DRAFT


# --- sending ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_broadcast_reaches_its_audience_once_and_a_403_counts_as_blocked_and_marks_the_customer(sandbox):
    customers = [make_customer(language="en") for _ in range(6)]
    make_customer(language="ru")
    sandbox.state.blocked_chats.add(customers[0].telegram_id)
    broadcast = _new(text="Videos are 20% faster", language="en")
    result = _send(broadcast)
    assert (result.audience, result.sent, result.blocked, result.failed, result.in_doubt, result.queued) == (6, 5, 1, 0, 0, 0)
    for customer in customers[1:]:
        assert [m["text"] for m in sandbox.state.bot_messages(customer.telegram_id)] == ["Videos are 20% faster"]
    assert Customer.objects.get(pk=customers[0].pk).bot_blocked_at is not None
    done = Broadcast.objects.get(pk=broadcast.pk)
    assert done.audience_size == 6 and done.finished_at is not None and done.started_at is not None
    # Writing the audience again (a second loop, a restart) adds no row.
    Broadcast.objects.filter(pk=broadcast.pk).update(status=BroadcastStatus.SENDING, audience_size=None, audience_cursor=0)
    broadcasts.write_audience_batch(broadcast_id=broadcast.pk)
    assert OutboxMessage.objects.filter(broadcast=broadcast).count() == 6


@pytest.mark.django_db(transaction=True)
def test_a_picture_with_a_caption_and_a_link_button_reaches_the_chat_as_telegram_would_get_it(sandbox, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    chats = [make_customer() for _ in range(3)]
    broadcast = _new(text="Spring sale: −30%", picture=_picture(), button_text="Open the shop",
                     button_url="https://example.com/shop")
    result = _send(broadcast, threads=2)  # one broadcast row at a time
    assert result.sent == 3
    for customer in chats:
        (message,) = sandbox.state.bot_messages(customer.telegram_id)
        assert message["caption"] == "Spring sale: −30%" and "text" not in message
        assert message["photo"][0]["file_size"] > 0
        assert message["reply_markup"] == {"inline_keyboard": [[{"text": "Open the shop", "url": "https://example.com/shop"}]]}
    # Uploaded once; the other chats got it by Telegram's file id.
    assert Broadcast.objects.get(pk=broadcast.pk).picture_file_id
    assert len({m["photo"][0]["file_id"] for c in chats for m in sandbox.state.bot_messages(c.telegram_id)}) == 1


@pytest.mark.django_db(transaction=True)
def test_a_scheduled_broadcast_starts_when_it_is_due(sandbox):
    customer = make_customer()
    broadcast = broadcasts.schedule_broadcast(acting_user=None, broadcast=_new(text="Later"),
                                              send_at=timezone.now() + timedelta(seconds=2))
    assert broadcast.status == BroadcastStatus.SCHEDULED
    with pytest.raises(InvalidBroadcast, match="future"):
        broadcasts.schedule_broadcast(acting_user=None, broadcast=broadcast, send_at=timezone.now() - timedelta(minutes=1))
    delivery = OutboxDelivery(threads=2, poll_interval=0.05).start()
    try:
        time.sleep(1)
        assert sandbox.state.bot_messages(customer.telegram_id) == []  # not yet
        wait_until(lambda: Broadcast.objects.get(pk=broadcast.pk).status == BroadcastStatus.DONE, timeout=15)
    finally:
        delivery.stop()
    assert [m["text"] for m in sandbox.state.bot_messages(customer.telegram_id)] == ["Later"]


@pytest.mark.django_db(transaction=True)
def test_cancel_stops_the_rest_and_keeps_what_was_sent(sandbox, settings):
    settings.BOT_BROADCAST_PER_SECOND = 5
    customers = [make_customer() for _ in range(40)]
    broadcast = _new(text="Stop me")
    broadcasts.start_broadcast(acting_user=None, broadcast=broadcast)
    delivery = OutboxDelivery(threads=4, poll_interval=0.05).start()
    try:
        wait_until(lambda: broadcasts.figures(broadcast).sent >= 5, timeout=20)
        broadcast, canceled = broadcasts.cancel_broadcast(acting_user=None, broadcast=broadcast)
        time.sleep(1.5)  # what was on its way lands; nothing more goes
    finally:
        delivery.stop()
    result = broadcasts.figures(broadcast)
    received = sum(len(sandbox.state.bot_messages(c.telegram_id)) for c in customers)
    assert broadcast.status == BroadcastStatus.CANCELED and broadcast.finished_at is not None
    assert canceled >= 20 and result.canceled == canceled and result.queued == 0
    assert result.sent == received and result.sent + result.canceled == 40
    with pytest.raises(BroadcastStateConflict, match="canceled"):
        broadcasts.start_broadcast(acting_user=None, broadcast=broadcast)


@pytest.mark.django_db(transaction=True)
def test_the_figures_are_live_while_it_sends_and_replies_are_not_held_behind_it(sandbox, settings):
    settings.BOT_BROADCAST_PER_SECOND = 10
    for _ in range(30):
        make_customer()
    broadcast = _new(text="Slowly")
    broadcasts.start_broadcast(acting_user=None, broadcast=broadcast)
    delivery = OutboxDelivery(threads=4, poll_interval=0.05).start()
    try:
        wait_until(lambda: broadcasts.figures(broadcast).sent >= 3, timeout=20)
        middle = broadcasts.figures(broadcast)
        reply = outbox.enqueue_text(777_001, "your picture is ready")
        started = time.monotonic()
        wait_until(lambda: OutboxMessage.objects.get(pk=reply.pk).status == OutboxStatus.SENT, timeout=10)
        reply_seconds = time.monotonic() - started
        wait_until(lambda: Broadcast.objects.get(pk=broadcast.pk).status == BroadcastStatus.DONE, timeout=30)
    finally:
        delivery.stop()
    assert middle.audience == 30 and 0 < middle.sent < 30 and middle.queued == 30 - middle.sent
    assert reply_seconds < 1.5, reply_seconds
    assert broadcasts.figures(broadcast).sent == 30


@pytest.mark.django_db(transaction=True)
def test_a_dead_loops_rows_go_back_if_never_on_the_wire_and_are_in_doubt_if_they_were(sandbox, settings):
    for _ in range(3):
        make_customer()
    broadcast = _new()
    broadcasts.start_broadcast(acting_user=None, broadcast=broadcast)
    broadcasts.write_audience_batch(broadcast_id=broadcast.pk)
    regular = outbox.enqueue_text(4343, "a reply")
    rows = list(OutboxMessage.objects.filter(broadcast=broadcast).order_by("id"))
    long_ago = timezone.now() - timedelta(seconds=settings.BOT_OUTBOX_STALE_CLAIM + 1)
    OutboxMessage.objects.filter(pk__in=[rows[0].pk, rows[1].pk, regular.pk]).update(
        status=OutboxStatus.SENDING, claimed_by="dead", claimed_at=long_ago)
    OutboxMessage.objects.filter(pk=rows[1].pk).update(status=OutboxStatus.ON_WIRE)
    assert reclaim_stale_rows() == (2, 1)
    statuses = dict(OutboxMessage.objects.values_list("pk", "status"))
    assert statuses[rows[0].pk] == statuses[regular.pk] == OutboxStatus.PENDING
    assert statuses[rows[1].pk] == OutboxStatus.IN_DOUBT
    assert broadcasts.figures(broadcast).in_doubt == 1
    # Canceled while a dead loop held a row: the row is canceled, not sent later.
    OutboxMessage.objects.filter(pk=rows[2].pk).update(status=OutboxStatus.SENDING, claimed_by="dead", claimed_at=long_ago)
    broadcasts.cancel_broadcast(acting_user=None, broadcast=broadcast)
    reclaim_stale_rows()
    assert OutboxMessage.objects.get(pk=rows[2].pk).status == OutboxStatus.CANCELED


@pytest.mark.django_db(transaction=True)
def test_a_broadcast_row_taken_back_meanwhile_is_not_sent_by_its_old_loop(sandbox):
    customer = make_customer()
    broadcast = _new()
    broadcasts.start_broadcast(acting_user=None, broadcast=broadcast)
    broadcasts.write_audience_batch(broadcast_id=broadcast.pk)
    row = OutboxMessage.objects.get(broadcast=broadcast)
    OutboxMessage.objects.filter(pk=row.pk).update(status=OutboxStatus.SENDING, claimed_by="old", claimed_at=timezone.now())
    row.refresh_from_db()
    OutboxMessage.objects.filter(pk=row.pk).update(claimed_by="new")  # another loop took it back and claimed it
    from telegram_bot.delivery import _Reclaimed, deliver_row
    from telegram_bot.sender import BotApi, Sender

    with pytest.raises(_Reclaimed):
        deliver_row(row, Sender(BotApi()), token="old")
    assert sandbox.state.bot_messages(customer.telegram_id) == []


# --- the command -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_command_counts_with_dry_run_sends_through_the_outbox_and_follows_until_done(sandbox):
    ru = [make_customer(language="ru") for _ in range(4)]
    make_customer(language="en")
    sandbox.state.blocked_chats.add(ru[0].telegram_id)
    out = StringIO()
    call_command("broadcast", "--text", "Новые цены", "--language", "ru", "--dry-run", stdout=out)
    assert out.getvalue() == "audience: 4 customer(s)\n" and not Broadcast.objects.exists()
    delivery = OutboxDelivery(threads=2, poll_interval=0.05).start()
    out = StringIO()
    try:
        call_command("broadcast", "--text", "Новые цены", "--language", "ru", "--wait", "--interval", "0.2", stdout=out)
    finally:
        delivery.stop()
    text = out.getvalue()
    assert "audience: 4 customer(s)" in text and "started" in text
    assert text.splitlines()[-1] == (
        "done: audience 4: queued 0, sent 3, failed 0, blocked the bot 1, canceled 0, in doubt 0")
    for customer in ru[1:]:
        assert [m["text"] for m in sandbox.state.bot_messages(customer.telegram_id)] == ["Новые цены"]


@pytest.mark.django_db
def test_the_command_schedules_and_refuses_an_empty_or_oversized_message():
    out = StringIO()
    call_command("broadcast", "--text", "Soon", "--send-at", (timezone.now() + timedelta(days=1)).isoformat(), stdout=out)
    assert "scheduled for" in out.getvalue()
    assert Broadcast.objects.get().status == BroadcastStatus.SCHEDULED
    with pytest.raises(CommandError, match="empty"):
        call_command("broadcast", "--text", "   ")
    with pytest.raises(CommandError, match="4096"):
        call_command("broadcast", "--text", "x" * 5000)
