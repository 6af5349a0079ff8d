"""The one sender (flood limits, 429s, retries), the durable outbox, broadcasts, the webhook view."""
from __future__ import annotations

import json
import time

import pytest
from django.test import Client

from billing.models import Customer
from telegram_bot import outbox
from telegram_bot.delivery import OutboxDelivery
from telegram_bot.flood import TokenBucket
from telegram_bot.models import OutboxMessage, OutboxStatus
from standins.telegram import SandboxServer
from telegram_bot.sender import BotApi, Sender, TelegramError, broadcast
from tests.helpers import make_customer

pytestmark = pytest.mark.timeout(120)


def test_token_bucket_reservations_space_calls_at_the_rate():
    bucket = TokenBucket(rate=10, capacity=1)
    waits = [bucket.reserve("k", now=100.0) for _ in range(4)]
    assert waits == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert bucket.try_take("k", now=100.0) == pytest.approx(0.4)


def test_the_sandbox_answers_429_with_retry_after_when_a_chat_floods(sandbox):
    api = BotApi(api_url=sandbox.url, token="1:x")
    codes = []
    for _ in range(5):
        try:
            api.call("sendMessage", {"chat_id": 5, "text": "hi"})
            codes.append(200)
        except TelegramError as exc:
            codes.append(exc.code)
            assert exc.retry_after >= 1
    assert codes[:3] == [200, 200, 200] and 429 in codes[3:]


def test_the_sender_keeps_one_chat_within_about_one_message_a_second_and_gets_no_429(sandbox):
    sender = Sender(BotApi(api_url=sandbox.url, token="1:x"))
    started = time.monotonic()
    for i in range(5):
        sender.send_message(77, f"message {i}")
    elapsed = time.monotonic() - started
    assert elapsed >= 2.9  # a burst of two, then one a second
    assert sandbox.state.stats["too_many_requests"] == 0
    assert [m["text"] for m in sandbox.state.bot_messages(77)] == [f"message {i}" for i in range(5)]


def test_the_sender_honours_retry_after_and_delivers(sandbox):
    sandbox.state.forced_429.append(2)
    sender = Sender(BotApi(api_url=sandbox.url, token="1:x"))
    started = time.monotonic()
    sender.send_message(78, "after the pause")
    assert time.monotonic() - started >= 1.9
    assert sender.stats["too_many_requests"] == 1
    assert sandbox.state.bot_messages(78)[0]["text"] == "after the pause"


def test_the_sender_retries_network_errors_then_gives_up_with_a_transient_error():
    sleeps = []
    sender = Sender(BotApi(api_url="http://127.0.0.1:1", token="1:x", timeout=1), sleep=sleeps.append, max_attempts=3)
    with pytest.raises(TelegramError) as caught:
        sender.send_message(1, "nobody is there")
    # Two backoff pauses (0.5 s, 1 s) between the three attempts, besides the flood-limit waits.
    assert caught.value.transient and 0.5 in sleeps and 1.0 in sleeps


@pytest.mark.django_db(transaction=True)
def test_an_outbox_row_survives_an_outage_and_is_delivered_when_telegram_is_back(settings):
    server = SandboxServer(port=0)
    port = server.port
    server.httpd.server_close()  # Telegram is down: nothing listens on the port yet
    settings.TELEGRAM_API_URL = f"http://127.0.0.1:{port}"
    row = outbox.enqueue_text(4242, "your picture is ready")
    delivery = OutboxDelivery(
        sender=Sender(BotApi(api_url=settings.TELEGRAM_API_URL, timeout=1), max_attempts=1), threads=2
    )
    delivery.run_once()
    row.refresh_from_db()
    assert row.status == OutboxStatus.PENDING and row.attempts == 1 and row.next_attempt_at is not None

    server = SandboxServer(port=port).start()
    try:
        OutboxMessage.objects.filter(pk=row.pk).update(next_attempt_at=None)  # the retry time has come
        delivery.run_once()
        row.refresh_from_db()
        assert row.status == OutboxStatus.SENT and row.sent_message_id
        assert server.state.bot_messages(4242)[0]["text"] == "your picture is ready"
    finally:
        server.stop()


@pytest.mark.django_db(transaction=True)
def test_outbox_rows_of_one_chat_go_out_in_order_and_progress_edits_collapse(sandbox):
    delivery = OutboxDelivery(threads=4, poll_interval=0.05)
    first = outbox.topic_message(9001, "job:1", "progress 0%")
    for percent in (10, 20, 30, 40):
        outbox.enqueue_progress_edit(first, f"progress {percent}%")
    outbox.enqueue_text(9001, "the result")
    assert OutboxMessage.objects.filter(method="editMessageText", status=OutboxStatus.PENDING).count() == 1
    delivery.start()
    try:
        deadline = time.monotonic() + 10
        while OutboxMessage.objects.exclude(status=OutboxStatus.SENT).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        delivery.stop()
    messages = sandbox.state.bot_messages(9001)
    assert [m["text"] for m in messages] == ["progress 40%", "the result"]
    assert outbox.topic_message(9001, "job:1", "again").pk == first.pk


@pytest.mark.django_db(transaction=True)
def test_a_403_marks_that_the_customer_blocked_the_bot_and_does_not_retry(sandbox):
    customer = make_customer()
    sandbox.state.blocked_chats.add(customer.telegram_id)
    row = outbox.enqueue_text(customer.telegram_id, "hello?")
    OutboxDelivery(threads=1).run_once()
    row.refresh_from_db()
    assert row.status == OutboxStatus.FAILED
    marked = Customer.objects.get(pk=customer.pk)
    assert marked.bot_blocked_at is not None and not marked.is_blocked  # not a staff block


@pytest.mark.django_db(transaction=True)
def test_a_broadcast_reaches_every_chat_within_the_limits_and_counts_who_blocked_the_bot(sandbox):
    customers = [make_customer() for _ in range(3)]
    sandbox.state.blocked_chats.add(customers[0].telegram_id)
    chats = [c.telegram_id for c in customers] + list(range(500_000, 500_097))
    progress = []
    result = broadcast(chats, "news", on_progress=lambda r: progress.append(r.sent), sender=Sender(BotApi()))
    assert (result.sent, result.blocked, result.failed, result.too_many_requests) == (99, 1, 0, 0)
    assert len(progress) == 100
    assert Customer.objects.get(pk=customers[0].pk).bot_blocked_at is not None
    assert result.seconds >= 99 / 30 - 0.5  # 30 a second overall


@pytest.mark.django_db(transaction=True)
def test_the_webhook_refuses_a_wrong_secret_and_feeds_a_right_one_to_the_bot(sandbox, settings):
    settings.TELEGRAM_WEBHOOK_SECRET = "s3cret"
    client = Client()
    update = {
        "update_id": 1,
        "message": {
            "message_id": 1, "date": 0, "text": "/help",
            "entities": [{"type": "bot_command", "offset": 0, "length": 5}],
            "chat": {"id": 31337, "type": "private"},
            "from": {"id": 31337, "is_bot": False, "first_name": "Web", "language_code": "en"},
        },
    }
    wrong = client.post("/telegram/webhook/", json.dumps(update), content_type="application/json",
                        headers={"X-Telegram-Bot-Api-Secret-Token": "guess"})
    assert wrong.status_code == 403
    assert not OutboxMessage.objects.exists()
    right = client.post("/telegram/webhook/", json.dumps(update), content_type="application/json",
                        headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret"})
    assert right.status_code == 200
    row = OutboxMessage.objects.get(chat_id=31337)
    assert "What I can do" in row.params["text"]
    malformed = client.post("/telegram/webhook/", "{\"message\": 5}", content_type="application/json",
                            headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret"})
    assert malformed.status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("body", [
    b'{"update_id": 1, "message": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",  # RecursionError in json
    b'{"update_id": 1, "message": ' + b'{"a": ' * 100 + b"1" + b"}" * 100 + b"}",  # parses, too deep to walk
    b"\xff not JSON",
], ids=["nested-100000", "nested-100", "not-json"])
def test_the_webhook_answers_400_to_a_body_that_is_not_json_or_nests_too_deep(settings, body):
    settings.TELEGRAM_WEBHOOK_SECRET = "s3cret"
    response = Client().post("/telegram/webhook/", body, content_type="application/json",
                             headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret"})
    assert response.status_code == 400
    assert not OutboxMessage.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_set_webhook_and_delete_webhook_commands_talk_to_the_bot_api(sandbox, settings):
    from django.core.management import call_command

    settings.TELEGRAM_WEBHOOK_SECRET = "s3cret"
    call_command("set_webhook", "https://bot.example.com/telegram/webhook/")
    assert sandbox.state.webhook == {"url": "https://bot.example.com/telegram/webhook/", "secret_token": "s3cret"}
    call_command("delete_webhook")
    assert sandbox.state.webhook["url"] == ""


@pytest.mark.django_db(transaction=True)
def test_webhook_mode_end_to_end_the_sandbox_posts_updates_and_the_reply_arrives(sandbox, settings, live_server):
    from django.core.management import call_command

    settings.TELEGRAM_WEBHOOK_SECRET = "hook-secret"
    call_command("set_webhook", f"{live_server.url}/telegram/webhook/")
    delivery = OutboxDelivery(poll_interval=0.1).start()
    try:
        sandbox.state.user(50505, language_code="en", first_name="Hook")
        sandbox.state.user_sends(50505, "/balance")
        deadline = time.monotonic() + 20
        while not sandbox.state.bot_messages(50505) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sandbox.state.bot_messages(50505)[0]["text"].startswith("Your balance")
        assert sandbox.state.updates == []  # delivered and acknowledged with 200
    finally:
        delivery.stop()
        call_command("delete_webhook")


def test_two_senders_share_one_chat_limit_through_redis_like_two_processes_would():
    sent_at = []

    class RecordingApi:
        token = "777:shared-limit-test"
        api_url = "http://unused"

        def call(self, method, params, files=None):
            sent_at.append(time.monotonic())
            return {"message_id": len(sent_at)}

    chat_id = int(time.time() * 1000)
    first = Sender(RecordingApi(), per_chat=10, global_rate=1000)
    second = Sender(RecordingApi(), per_chat=10, global_rate=1000)
    for i in range(8):
        (first if i % 2 else second).send_message(chat_id, f"m{i}")
    # A burst of two, then one every 0.1 s for both together (each alone would allow twice that).
    assert sent_at[-1] - sent_at[0] >= 0.55


def test_without_redis_each_sender_keeps_its_own_limits(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    sender = Sender(BotApi(api_url="http://127.0.0.1:1", token="1:x"), per_chat=10)
    waits = [sender.chat_bucket.reserve(5) for _ in range(4)]
    assert waits == pytest.approx([0.0, 0.0, 0.1, 0.2], abs=0.02)


@pytest.mark.skipif(__import__("django.db").db.connection.vendor != "sqlite", reason="the process write lock is SQLite's")
@pytest.mark.django_db(transaction=True)
def test_a_message_written_inside_a_transaction_does_not_wait_for_a_thread_waiting_on_that_transaction():
    """A job finishing in the in-process pool writes its messages inside its transaction, which
    holds SQLite's write lock; the delivery loop may hold the process lock and wait for SQLite."""
    import threading

    from django.db import connections, transaction

    in_transaction, loop_has_lock = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def delivery_loop():
        try:
            with outbox.serialised_writes():
                loop_has_lock.set()
                in_transaction.wait(10)
                # Needs SQLite's write lock, held by the other thread's transaction.
                OutboxMessage.objects.filter(status=OutboxStatus.SENDING).update(status=OutboxStatus.PENDING)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    def finishing_job():
        try:
            loop_has_lock.wait(10)
            with transaction.atomic():
                in_transaction.set()
                outbox.enqueue_text(4242, "your picture is ready")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=delivery_loop), threading.Thread(target=finishing_job)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert time.monotonic() - started < 5  # not a wait for SQLite's busy time-out
    assert OutboxMessage.objects.filter(chat_id=4242).count() == 1


def test_marking_chats_blocked_marks_each_customer_once_and_ignores_unknown_chats(db):
    from telegram_bot.services import mark_chats_blocked

    fresh, already = make_customer(), make_customer()
    mark_chats_blocked(chat_ids=[already.telegram_id])
    first_mark = Customer.objects.get(pk=already.pk).bot_blocked_at
    assert mark_chats_blocked(chat_ids=[fresh.telegram_id, already.telegram_id, 99_999_999]) == 1
    assert Customer.objects.get(pk=fresh.pk).bot_blocked_at is not None
    assert Customer.objects.get(pk=already.pk).bot_blocked_at == first_mark
