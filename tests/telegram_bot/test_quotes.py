"""Quotes: a confirm button starts its own quote's job, once, at the price it showed; nothing else.

The handlers are called directly here (the update parsing and the sandbox are in the chat e2e
tests); what the bot says is read from the outbox rows they write.
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.utils import translation

from billing.money import format_amount
from billing.selectors import get_balance
from jobs.models import Job, JobKind
from payments import services as payment_services
from telegram_bot import callbacks
from telegram_bot.handlers import Handlers
from telegram_bot.models import Conversation, DialogueState, OutboxMessage
from telegram_bot.services import set_state
from tests.helpers import make_customer, run_concurrently, set_price

pytestmark = pytest.mark.django_db


class FakeBot:
    """What the handlers call on telebot directly (callback answers); the rest goes via the outbox."""

    def __init__(self):
        self.answers = []

    def answer_callback_query(self, query_id, text=None, show_alert=None):
        self.answers.append((query_id, text))


@pytest.fixture(autouse=True)
def jobs_stay_in_the_test(settings, monkeypatch):
    settings.AI_PROVIDER = "fake"
    monkeypatch.setattr("jobs.queueing.enqueue_job", lambda job_id, kind: "test")


@pytest.fixture
def bot():
    return FakeBot()


@pytest.fixture
def handlers(bot):
    return Handlers(bot)


def _customer(balance=100_000, language="en"):
    return make_customer(balance=balance, language=language)


def _quote_rows(customer):
    return list(OutboxMessage.objects.filter(chat_id=customer.telegram_id, method="sendMessage", topic__contains=":")
                .order_by("id"))


def _buttons(row):
    return [button for line in row.params["reply_markup"]["inline_keyboard"] for button in line]


def _button(row, label):
    [button] = [b for b in _buttons(row) if label in b["text"]]
    return button


_message_ids = iter(range(1000, 10**6))


def _press(handlers, customer, data, *, message_id=None):
    query = SimpleNamespace(
        id=f"q{next(_message_ids)}", data=data,
        message=SimpleNamespace(chat=SimpleNamespace(id=customer.telegram_id), message_id=message_id or next(_message_ids)),
    )
    with translation.override(customer.language):
        handlers.callback(query, {"customer": customer})
    return query


def _offer(handlers, customer, **draft):
    with translation.override(customer.language):
        handlers._offer(customer.telegram_id, customer, **draft)
    return _quote_rows(customer)[-1]


def _keyboard_removals(customer):
    return list(OutboxMessage.objects.filter(chat_id=customer.telegram_id, method="editMessageReplyMarkup").order_by("id"))


def test_an_old_picture_quotes_button_does_not_start_the_video_quoted_later(handlers, bot):
    customer = _customer()
    picture = _offer(handlers, customer, kind=JobKind.IMAGE, prompt="a cat")
    video = _offer(handlers, customer, kind=JobKind.VIDEO_TEXT, prompt="waves",
                   options={"duration": 5, "mode": "std", "aspect_ratio": "16:9"})
    query = _press(handlers, customer, _button(picture, "Start for")["callback_data"], message_id=11)

    assert not Job.objects.filter(customer=customer).exists()
    assert get_balance(customer) == 100_000
    assert bot.answers == [(query.id, "This offer has expired. Start again from the menu.")]
    # The pressed message loses its keyboard; the video quote keeps its draft and button.
    assert {"message_id": 11, "reply_markup": {"inline_keyboard": []}, "chat_id": customer.telegram_id} in [
        row.params for row in _keyboard_removals(customer)
    ]
    _press(handlers, customer, _button(video, "Start for ₽50")["callback_data"])
    job = Job.objects.get(customer=customer)
    assert job.kind == JobKind.VIDEO_TEXT and job.cost_estimate == 5_000
    assert get_balance(customer) == 95_000


def test_the_confirm_button_carries_the_quote_id_and_its_price():
    customer = _customer()
    row = _offer(Handlers(FakeBot()), customer, kind=JobKind.IMAGE, prompt="a cat")
    pressed = callbacks.parse(_button(row, "Start for")["callback_data"])
    draft = Conversation.objects.get(chat_id=customer.telegram_id).data
    assert pressed == callbacks.Confirm(draft["quote"], 1_500) and draft["price"] == 1_500
    assert row.topic == f"quote:{customer.telegram_id}:{draft['quote']}"


def test_pressing_a_quote_twice_starts_one_job_and_the_second_press_is_told_it_expired(handlers, bot):
    customer = _customer()
    row = _offer(handlers, customer, kind=JobKind.IMAGE, prompt="a cat")
    data = _button(row, "Start for")["callback_data"]
    first = _press(handlers, customer, data, message_id=5)
    second = _press(handlers, customer, data, message_id=5)
    assert Job.objects.filter(customer=customer).count() == 1
    assert get_balance(customer) == 100_000 - 1_500
    assert bot.answers == [(first.id, None), (second.id, "This offer has expired. Start again from the menu.")]


def test_a_forged_price_on_the_current_quote_starts_nothing(handlers, bot):
    customer = _customer()
    _offer(handlers, customer, kind=JobKind.VIDEO_TEXT, prompt="waves", options={"duration": 10, "mode": "pro"})
    quote = Conversation.objects.get(chat_id=customer.telegram_id).data["quote"]
    _press(handlers, customer, callbacks.build(callbacks.Confirm(quote, 1_500)))
    assert not Job.objects.filter(customer=customer).exists() and get_balance(customer) == 100_000
    assert Conversation.objects.get(chat_id=customer.telegram_id).state == DialogueState.CONFIRM  # the real button still works


@pytest.mark.parametrize("data", ["c:ok", "c:zzzz:1500", "garbage", ""])
def test_an_old_or_garbled_button_answers_expired_removes_its_keyboard_and_starts_nothing(handlers, bot, data):
    customer = _customer()
    _offer(handlers, customer, kind=JobKind.IMAGE, prompt="a cat")
    query = _press(handlers, customer, data, message_id=77)
    assert bot.answers == [(query.id, "This offer has expired. Start again from the menu.")]
    assert [row.params["message_id"] for row in _keyboard_removals(customer)] == [77]
    assert not Job.objects.filter(customer=customer).exists()


def test_a_new_quote_takes_the_keyboard_off_the_one_shown_before(handlers):
    customer = _customer()
    first = _offer(handlers, customer, kind=JobKind.IMAGE, prompt="a cat")
    assert _keyboard_removals(customer) == []
    second = _offer(handlers, customer, kind=JobKind.IMAGE, prompt="a dog")
    [removal] = _keyboard_removals(customer)
    assert removal.edit_of_id == first.pk and removal.params["reply_markup"] == {"inline_keyboard": []}
    # Written before the new quote: the chat's rows go out in id order.
    assert first.pk < removal.pk < second.pk
    _offer(handlers, customer, kind=JobKind.IMAGE, prompt="a bird")
    assert [r.edit_of_id for r in _keyboard_removals(customer)] == [first.pk, second.pk]  # each once


def test_a_used_quote_loses_its_keyboard_and_cancel_drops_the_quote_and_its_keyboard(handlers):
    customer = _customer()
    used = _offer(handlers, customer, kind=JobKind.IMAGE, prompt="a cat")
    _press(handlers, customer, _button(used, "Start for")["callback_data"])
    assert [r.edit_of_id for r in _keyboard_removals(customer)] == [used.pk]
    dropped = _offer(handlers, customer, kind=JobKind.IMAGE, prompt="a dog")
    _press(handlers, customer, _button(dropped, "Cancel")["callback_data"])
    assert [r.edit_of_id for r in _keyboard_removals(customer)] == [used.pk, dropped.pk]
    _press(handlers, customer, _button(dropped, "Start for")["callback_data"])
    assert Job.objects.filter(customer=customer).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_double_press_from_two_threads_starts_exactly_one_job(settings):
    settings.MAX_ACTIVE_JOBS_PER_CUSTOMER = 10
    customer = _customer(balance=10_000)
    bot = FakeBot()
    rounds = 4  # several quotes, each pressed twice at once: one lucky interleaving proves little
    for _round in range(rounds):
        data = _button(_offer(Handlers(bot), customer, kind=JobKind.IMAGE, prompt="a cat"), "Start for")["callback_data"]
        results = run_concurrently(lambda i: _press(Handlers(bot), customer, data, message_id=9), 2)
        assert [status for status, _value in results] == ["ok", "ok"], results
    assert Job.objects.filter(customer=customer).count() == rounds
    assert get_balance(customer) == 10_000 - rounds * 1_500
    assert sorted(text or "" for _query, text in bot.answers) == [""] * rounds + [
        "This offer has expired. Start again from the menu."
    ] * rounds


# --- a quote above the balance ------------------------------------------------------------------


def _pay_by_stars(customer, amount, captured):
    payment = payment_services.create_topup(customer=customer, amount=amount, provider="stars")
    with captured(execute=True):
        payment_services.mark_payment_succeeded(payment=payment, provider_payment_id=f"stx{payment.pk}")


def test_a_quote_above_the_balance_offers_the_top_up_that_covers_it_instead_of_a_start_button(handlers):
    customer = _customer(balance=3_000)
    row = _offer(handlers, customer, kind=JobKind.VIDEO_TEXT, prompt="waves", options={"duration": 10, "mode": "pro"})
    assert [b["text"] for b in _buttons(row)] == ["💳 Top up ₽150", "⚙️ Model and options", "✖️ Cancel"]  # ₽180 price - ₽30 balance
    assert callbacks.parse(_button(row, "Top up")["callback_data"]) == callbacks.TopupAmount(15_000)
    assert "Price: ₽180. Your balance: ₽30." in row.params["text"]
    assert "Top up ₽150 and I will show this offer again" in row.params["text"]
    assert Conversation.objects.get(chat_id=customer.telegram_id).data["awaiting_topup"] is True


def test_the_covering_top_up_is_at_least_the_smallest_top_up(handlers, settings):
    customer = _customer(balance=1_000)
    row = _offer(handlers, customer, kind=JobKind.IMAGE, prompt="a cat")
    assert callbacks.parse(_button(row, "Top up")["callback_data"]) == callbacks.TopupAmount(settings.TOPUP_MIN_KOPECKS)


def test_after_the_top_up_is_paid_the_quote_is_shown_again_and_one_press_starts_it(
    handlers, bot, django_capture_on_commit_callbacks
):
    customer = _customer(balance=3_000)
    short = _offer(handlers, customer, kind=JobKind.VIDEO_TEXT, prompt="waves", options={"duration": 10, "mode": "pro"})
    _press(handlers, customer, _button(short, "Top up")["callback_data"])
    methods = OutboxMessage.objects.filter(chat_id=customer.telegram_id).latest("id")
    assert methods.params["text"] == "Top up by ₽150. Choose how to pay:"
    assert Conversation.objects.get(chat_id=customer.telegram_id).state == DialogueState.CONFIRM  # the draft waits
    assert not Job.objects.filter(customer=customer).exists()

    _pay_by_stars(customer, 15_000, django_capture_on_commit_callbacks)
    assert not Job.objects.filter(customer=customer).exists()  # shown again, never started by itself
    resumed = _quote_rows(customer)[-1]
    received = OutboxMessage.objects.get(chat_id=customer.telegram_id, params__text__startswith="✅ Payment received: ₽150")
    assert short.pk < received.pk < resumed.pk  # told of the payment first, then the offer again
    assert "Price: ₽180. Your balance: ₽180." in resumed.params["text"]
    assert [r.edit_of_id for r in _keyboard_removals(customer)] == [short.pk]
    _press(handlers, customer, _button(resumed, "Start for ₽180")["callback_data"])
    job = Job.objects.get(customer=customer)
    assert job.kind == JobKind.VIDEO_TEXT and job.options == {"duration": 10, "mode": "pro"}
    assert get_balance(customer) == 0


def test_the_quote_shown_after_the_top_up_is_quoted_again_at_todays_price(handlers, django_capture_on_commit_callbacks):
    customer = _customer(balance=0)
    _offer(handlers, customer, kind=JobKind.IMAGE, prompt="a cat")
    set_price(kind=JobKind.IMAGE, amount=2_500)  # staff change the price meanwhile
    _pay_by_stars(customer, 10_000, django_capture_on_commit_callbacks)
    resumed = _quote_rows(customer)[-1]
    pressed = callbacks.parse(_button(resumed, "Start for ₽25")["callback_data"])
    assert pressed.price == 2_500 == Conversation.objects.get(chat_id=customer.telegram_id).data["price"]


def test_a_top_up_shows_no_quote_when_the_customer_moved_on_or_had_enough_already(
    handlers, django_capture_on_commit_callbacks
):
    moved_on = _customer(balance=0)
    _offer(handlers, moved_on, kind=JobKind.IMAGE, prompt="a cat")
    with translation.override("en"):
        handlers.picture(SimpleNamespace(chat=SimpleNamespace(id=moved_on.telegram_id), text="/picture"),
                         {"customer": moved_on})
    _pay_by_stars(moved_on, 10_000, django_capture_on_commit_callbacks)
    assert len(_quote_rows(moved_on)) == 1

    had_enough = _customer(balance=5_000)
    _offer(handlers, had_enough, kind=JobKind.IMAGE, prompt="a dog")
    _pay_by_stars(had_enough, 10_000, django_capture_on_commit_callbacks)
    assert len(_quote_rows(had_enough)) == 1


def test_a_balance_that_fell_after_the_quote_gets_the_quote_again_with_the_covering_top_up(handlers, bot):
    from billing.services import reserve_balance

    customer = _customer(balance=2_000)
    row = _offer(handlers, customer, kind=JobKind.IMAGE, prompt="a cat")
    reserve_balance(customer=customer, amount=1_000, idempotency_key="elsewhere", description="another job")
    _press(handlers, customer, _button(row, "Start for")["callback_data"])
    assert not Job.objects.filter(customer=customer).exists()
    again = _quote_rows(customer)[-1]
    assert again.pk != row.pk and "Top up ₽100" in [b["text"] for b in _buttons(again)][0]
    assert Conversation.objects.get(chat_id=customer.telegram_id).data["awaiting_topup"] is True


def test_a_price_changed_after_the_quote_starts_nothing_and_shows_the_new_price(handlers):
    customer = _customer()
    row = _offer(handlers, customer, kind=JobKind.IMAGE, prompt="a cat")
    set_price(kind=JobKind.IMAGE, amount=2_500)
    _press(handlers, customer, _button(row, "Start for ₽15")["callback_data"])
    assert not Job.objects.filter(customer=customer).exists() and get_balance(customer) == 100_000
    told = OutboxMessage.objects.get(chat_id=customer.telegram_id, params__text__startswith="The price has changed")
    again = _quote_rows(customer)[-1]
    assert told.pk < again.pk and _button(again, "Start for ₽25")
    _press(handlers, customer, _button(again, "Start for ₽25")["callback_data"])
    assert Job.objects.get(customer=customer).cost_estimate == 2_500


# --- prices on the buttons that change them ------------------------------------------------------


def test_duration_buttons_show_the_cheapest_price_and_quality_buttons_the_exact_one(handlers):
    customer = _customer()
    chat = SimpleNamespace(chat=SimpleNamespace(id=customer.telegram_id), text="/video")
    with translation.override("en"):
        handlers.video(chat, {"customer": customer})
    durations = OutboxMessage.objects.filter(chat_id=customer.telegram_id).latest("id")
    assert [b["text"] for b in _buttons(durations)] == ["5 s · from ₽50", "10 s · from ₽100"]
    _press(handlers, customer, _button(durations, "10 s")["callback_data"])
    _press(handlers, customer, callbacks.build(callbacks.VideoAspect("16:9")))
    modes = OutboxMessage.objects.filter(chat_id=customer.telegram_id).latest("id")
    assert [b["text"] for b in _buttons(modes)] == ["standard · ₽100", "pro · ₽180"]


def test_a_quality_button_says_from_when_a_video_from_a_photo_costs_otherwise_and_speaks_russian(handlers):
    set_price(kind=JobKind.VIDEO_IMAGE, mode="pro", amount=25_000)
    customer = _customer(language="ru")
    set_state(customer.telegram_id, DialogueState.VIDEO_OPTIONS, {"duration": 10})
    _press(handlers, customer, callbacks.build(callbacks.VideoAspect("16:9")))
    modes = OutboxMessage.objects.filter(chat_id=customer.telegram_id).latest("id")
    assert [b["text"] for b in _buttons(modes)] == [
        f"стандарт · {format_amount(10_000, 'ru')}", f"про · от {format_amount(18_000, 'ru')}"
    ]


def test_the_short_quote_speaks_russian(handlers):
    customer = _customer(balance=0, language="ru")
    row = _offer(handlers, customer, kind=JobKind.IMAGE, prompt="кот")
    hundred = format_amount(10_000, "ru")
    assert [b["text"] for b in _buttons(row)] == [f"💳 Пополнить на {hundred}", "⚙️ Модель и параметры", "✖️ Отменить"]
    assert f"Пополните баланс на {hundred}, и я снова покажу это предложение" in row.params["text"]
