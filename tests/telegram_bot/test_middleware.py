"""The middleware and the request limit, through the real bot (middleware + handlers) run
synchronously on built updates: private chats only, the flood window on every update, the
request window on generation requests and payments started, and a blocked customer's Stars."""
from __future__ import annotations

import re
import time
import uuid

import pytest

from billing import selectors as billing_selectors
from billing.models import Customer, Transfer
from genbot import counters
from jobs.models import Job
from payments import services as payment_services
from payments.models import Payment, PaymentStatus
from telegram_bot.models import Conversation, DialogueState
from telegram_bot.ratelimit import SlidingWindowLimiter
from tests.helpers import make_customer
from tests.telegram_bot.conftest import new_chat_id
from tests.telegram_bot.direct import Person, direct_bot  # noqa: F401 - the fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.fixture
def bot(direct_bot):  # noqa: F811
    return direct_bot


def _person(bot, *, balance: int = 0, language: str = "en") -> Person:
    person = Person(bot, new_chat_id(), language=language)
    if balance:
        make_customer(telegram_id=person.user["id"], balance=balance, language=language)
    return person


def _retry_seconds(text: str) -> int:
    return int(re.search(r"(\d+)\s*(?:s|с)\b", text).group(1))


def _order_video(person: Person) -> str:
    person.send("/video")
    person.press("v:d:5")
    person.press("v:a:16:9")
    person.press("v:m:std")
    person.send("waves on a beach")
    return person.confirm()


# --- the request window: generation requests and payments started ---------------------------


def test_whole_video_orders_count_one_request_each_not_six_updates(bot, settings):
    settings.BOT_RATE_LIMIT = 2  # the dialogue's five other steps count only against the flood window
    bot.middlewares[0].limiter = SlidingWindowLimiter()  # a limiter built under that setting
    person = _person(bot, balance=500_000)
    for _ in range(2):
        query = _order_video(person)
        assert bot.answers[query].get("text") is None  # answered plainly: accepted
    assert Job.objects.filter(customer__telegram_id=person.user["id"], kind="video_text").count() == 2


def test_a_whole_video_order_passes_under_the_default_limits(bot, settings):
    assert settings.BOT_RATE_LIMIT == 10 and settings.BOT_FLOOD_LIMIT == 30
    person = _person(bot, balance=500_000)
    _order_video(person)
    assert Job.objects.filter(customer__telegram_id=person.user["id"]).count() == 1


@pytest.mark.parametrize(("language", "phrase"), [("en", "Try again in"), ("ru", "Попробуйте снова через")])
def test_the_11th_generation_request_in_a_window_is_refused_with_the_retry_time(bot, settings, language, phrase):
    settings.MAX_ACTIVE_JOBS_PER_CUSTOMER = 20
    person = _person(bot, balance=500_000, language=language)
    started = time.monotonic()
    queries = []
    for i in range(11):
        person.send(f"/picture a cat number {i}")
        queries.append(person.confirm())
    customer = Customer.objects.get(telegram_id=person.user["id"])
    assert Job.objects.filter(customer=customer).count() == 10
    refusal = bot.answers[queries[-1]]
    assert phrase in refusal["text"] and _truthy(refusal.get("show_alert"))
    assert 60 - (time.monotonic() - started) - 1 <= _retry_seconds(refusal["text"]) <= 60
    # The refused draft is still there: pressed again after the wait, it starts.
    assert Conversation.objects.get(chat_id=person.chat["id"]).state == DialogueState.CONFIRM
    # A second refused press in the same period is still answered, with the time, as a small popup.
    again = person.confirm()
    assert phrase in bot.answers[again]["text"] and not _truthy(bot.answers[again].get("show_alert"))


def test_payments_started_count_against_the_request_limit(bot, settings):
    settings.BOT_RATE_LIMIT = 2
    person = _person(bot)
    for _ in range(3):
        person.press("p:st:50000")
    assert Payment.objects.filter(customer__telegram_id=person.user["id"], provider="stars").count() == 2
    refusals = [t for t in person.texts() if "Try again in" in t]
    assert len(refusals) == 1 and _retry_seconds(refusals[0]) >= 1


# --- the flood window: every update --------------------------------------------------------


@pytest.mark.parametrize(("language", "phrase"), [("en", "too fast"), ("ru", "слишком часто")])
def test_31_updates_in_a_window_get_one_flood_refusal_with_the_time(bot, language, phrase):
    person = _person(bot, language=language)
    refused_before = counters.read_all().get("rate_limit_refusals", 0)
    for _ in range(35):
        person.send("/help")
    written = person.texts()
    assert len(written) == 31  # 30 answers, then one refusal covering the rest of the period
    assert phrase in written[-1] and 1 <= _retry_seconds(written[-1]) <= 60
    assert counters.read_all().get("rate_limit_refusals", 0) - refused_before == 5
    # A button pressed meanwhile is answered with the same text (a popup, not a chat message).
    query = person.press("m:balance")
    assert phrase in bot.answers[query]["text"]
    assert len(person.texts()) == 31


def test_a_refusal_after_the_announced_time_is_answered_again(bot, settings):
    """Messages refused within a period are covered by its text; the next period gets its own."""
    settings.BOT_FLOOD_LIMIT = 2
    bot.middlewares[0].limiter = SlidingWindowLimiter(window=1.5)
    person = _person(bot)
    for _ in range(4):
        person.send("/help")
    assert ["too fast" in t for t in person.texts()] == [False, False, True]
    time.sleep(1.6)
    for _ in range(3):
        person.send("/help")
    assert ["too fast" in t for t in person.texts()] == [False, False, True, False, False, True]


def test_payments_are_never_flood_limited(bot, settings):
    settings.BOT_FLOOD_LIMIT = 1
    person = _person(bot)
    customer = make_customer(telegram_id=person.user["id"])
    person.send("/help")
    person.send("/help")  # refused: the window is full
    payment = payment_services.create_stars_topup(customer=customer, stars=100)
    person.pays(payment, charge=f"charge-{uuid.uuid4().hex}")
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED


# --- private chats only --------------------------------------------------------------------


def _group(bot, chat_id: int, *, language: str = "en") -> Person:
    return Person(bot, new_chat_id(), language=language, chat={"id": chat_id, "type": "supergroup", "title": "Cats"})


def test_a_group_gets_one_sentence_per_window_and_nothing_is_stored_or_started(bot):
    group_id = -new_chat_id()
    members = [_group(bot, group_id), _group(bot, group_id)]
    members[0].send("/start")
    members[1].send("/picture a cat")
    members[0].send("hello")
    members[1].press("p:st:50000")
    assert members[0].texts() == ["I work in a private chat only: open @genbot_sandbox_bot and write to me there."]
    user_ids = [m.user["id"] for m in members]
    assert not Customer.objects.filter(telegram_id__in=user_ids).exists()
    assert not Conversation.objects.filter(chat_id=group_id).exists()
    assert not Job.objects.exists() and not Payment.objects.exists()
    # Another group has its own window.
    other = _group(bot, -new_chat_id())
    other.send("/help")
    assert len(other.texts()) == 1


def test_a_button_in_a_group_is_answered_with_the_sentence_in_the_users_language(bot):
    member = _group(bot, -new_chat_id(), language="ru")
    query = member.press("c:ok")
    assert bot.answers[query]["text"] == "Я работаю только в личном чате: откройте @genbot_sandbox_bot и напишите мне там."
    assert member.texts() == [] and not Customer.objects.filter(telegram_id=member.user["id"]).exists()


def test_a_known_customer_writing_in_a_group_is_answered_in_their_language(bot):
    member = _group(bot, -new_chat_id(), language="en")
    make_customer(telegram_id=member.user["id"], language="ru")
    member.send("/balance")
    assert member.texts() == ["Я работаю только в личном чате: откройте @genbot_sandbox_bot и напишите мне там."]


# --- a blocked customer's Stars ------------------------------------------------------------


def test_a_blocked_customers_successful_payment_is_recorded_and_credited_once(bot):
    person = _person(bot)
    customer = make_customer(telegram_id=person.user["id"], language="en")
    payment = payment_services.create_stars_topup(customer=customer, stars=100)
    Customer.objects.filter(pk=customer.pk).update(is_blocked=True)
    charge = f"charge-{uuid.uuid4().hex}"
    person.pays(payment, charge)
    person.pays(payment, charge)  # Telegram delivers it again
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED and payment.provider_payment_id == charge
    assert Transfer.objects.filter(idempotency_key=f"stars:{charge}").count() == 1
    assert billing_selectors.get_balance(customer) == payment.amount
    assert Customer.objects.get(pk=customer.pk).is_blocked
    # Anything else from them is still refused.
    person.send("/picture a cat")
    assert "account is blocked" in person.texts()[-1] and not Job.objects.filter(customer=customer).exists()
    assert billing_selectors.find_drift() == [] and billing_selectors.total_of_all_accounts() == 0


def _truthy(value) -> bool:
    return value in (True, "true", "True", 1, "1")
