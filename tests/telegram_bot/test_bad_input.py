"""Bad input gets a clear answer in the customer's language or a logged skip, never a trace in the
chat and never a dead loop: after each, the bot still answers."""
from __future__ import annotations

import pytest
from django.conf import settings

from billing.models import Customer
from billing.selectors import get_balance, get_held
from jobs.models import Job
from tests.helpers import decompression_bomb_png, make_customer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def _still_answers(chat):
    chat.send("/help")
    chat.wait_text("What I can do")


def _no_trace(chat):
    for message in chat.bot_messages(since_mark=False):
        assert "Traceback" not in (message.get("text") or "")


def test_an_unknown_command_gets_a_hint(bot):
    chat = bot.chat()
    chat.send("/frobnicate now")
    chat.wait_text("Unknown command /frobnicate")
    _still_answers(chat)


def test_plain_text_outside_a_dialogue_is_quoted_as_a_picture_and_starts_nothing(bot):
    chat = bot.chat()
    chat.send("hello there")
    chat.wait_text("Picture: “hello there”")
    assert not Job.objects.filter(customer__telegram_id=chat.chat_id).exists()


def test_a_sticker_gets_an_answer(bot):
    chat = bot.chat()
    chat.mark = 0
    chat.state.user_sends(chat.chat_id, sticker={
        "file_id": "sticker1", "file_unique_id": "s1", "type": "regular", "width": 512, "height": 512,
        "is_animated": False, "is_video": False,
    })
    chat.wait_text("sticker")
    _still_answers(chat)


def test_a_huge_text_is_refused_with_the_limit(bot):
    chat = make_customer_chat(bot)
    chat.send("/picture")
    chat.wait_text("Describe the picture")
    chat.send("x" * (settings.JOB_MAX_PROMPT_LENGTH + 500))
    chat.wait_text("too long")
    assert not Job.objects.filter(customer__telegram_id=chat.chat_id).exists()


def test_an_oversized_photo_is_refused_before_download(bot):
    chat = bot.chat()
    chat.mark = 0
    big = settings.JOB_MAX_INPUT_BYTES + 1
    chat.state.user_sends(chat.chat_id, caption="edit it", photo=[
        {"file_id": "huge", "file_unique_id": "huge", "width": 9000, "height": 9000, "file_size": big},
    ])
    chat.wait_text("too large")
    _still_answers(chat)


def test_an_oversized_document_is_refused(bot):
    chat = bot.chat()
    chat.mark = 0
    chat.state.user_sends(chat.chat_id, document={
        "file_id": "doc", "file_unique_id": "doc", "file_name": "film.mkv", "mime_type": "video/x-matroska",
        "file_size": settings.JOB_MAX_INPUT_BYTES * 5,
    })
    chat.wait_text("too large")


def test_a_photo_that_is_not_a_picture_is_refused_at_confirmation_without_charge(bot):
    chat = make_customer_chat(bot)
    chat.send_photo("make it pop", data=b"this is not an image at all")
    offer = chat.wait_text("Start?")
    chat.press(offer, "Start for")
    chat.wait_text("JPEG, PNG or WebP")
    assert not Job.objects.filter(customer__telegram_id=chat.chat_id).exists()


def test_a_decompression_bomb_photo_gets_the_too_large_answer_without_charge(bot):
    chat = make_customer_chat(bot)
    chat.send_photo("make it pop", data=decompression_bomb_png())
    offer = chat.wait_text("Start?")
    chat.press(offer, "Start for")
    chat.wait_text("The picture is too large: send one of at most 40 megapixels.")
    assert not Job.objects.filter(customer__telegram_id=chat.chat_id).exists()
    customer = Customer.objects.get(telegram_id=chat.chat_id)
    assert get_balance(customer) == 100_000 and get_held(customer) == 0
    _no_trace(chat)
    _still_answers(chat)


def test_a_photo_download_that_hangs_is_answered_with_send_it_again(bot, settings):
    settings.TELEGRAM_FILE_TIMEOUT = 0.5
    chat = make_customer_chat(bot)
    chat.send_photo("make it pop")
    offer = chat.wait_text("Start?")
    [photo] = [m for m in chat.state.messages(chat.chat_id) if "photo" in m and not m["from"].get("is_bot")]
    chat.state.stalled_files[photo["photo"][-1]["file_id"]] = 5
    chat.press(offer, "Start for")
    chat.wait_text("could not get your photo", timeout=4)
    assert not Job.objects.filter(customer__telegram_id=chat.chat_id).exists()
    _still_answers(chat)


def test_a_callback_for_a_job_that_is_gone_answers_that_it_no_longer_exists(bot):
    chat = bot.chat()
    chat.send("/help")
    menu = chat.wait_text("What I can do")
    update = chat.state.user_presses(chat.chat_id, menu["message_id"], "x:987654321")
    query_id = update["callback_query"]["id"]
    import time

    for _ in range(100):
        answer = chat.state.callback_answers.get(query_id)
        if answer:
            break
        time.sleep(0.05)
    assert answer and "no longer exists" in answer["text"]


def test_a_stale_confirm_button_cannot_start_a_second_paid_job(bot):
    chat = make_customer_chat(bot)
    chat.send("/picture a bridge")
    offer = chat.wait_text("Start?")
    chat.press(offer, "Start for")
    chat.wait_text("Picture #")
    chat.press(offer, "Start for")
    import time

    time.sleep(1.5)
    assert Job.objects.filter(customer__telegram_id=chat.chat_id).count() == 1
    # The used quote's keyboard is gone from the chat.
    assert "reply_markup" not in chat.state.find_message(chat.chat_id, offer["message_id"])


def test_malformed_updates_are_skipped_and_the_loop_goes_on(bot):
    chat = bot.chat()
    state = chat.state
    state.push_raw_update({"message": {"message_id": 1, "text": "no chat and no sender"}})
    state.push_raw_update({"message": "not even an object"})
    state.push_raw_update({"callback_query": {"id": "q", "data": "m:help"}})
    state.push_raw_update({"something_new": {"x": 1}})
    _still_answers(chat)
    _no_trace(chat)


def test_insufficient_funds_is_explained_with_a_top_up_button_instead_of_a_start_button(bot):
    chat = bot.chat()
    chat.send("/picture a castle")
    answer = chat.wait_text("Not enough money")
    labels = [b["text"] for row in answer["reply_markup"]["inline_keyboard"] for b in row]
    assert "💳 Top up ₽100" in labels and not any("Start for" in label for label in labels)


def make_customer_chat(bot):
    chat = bot.chat()
    make_customer(telegram_id=chat.chat_id, balance=100_000, language="en")
    return chat
