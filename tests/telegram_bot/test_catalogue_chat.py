"""Issue 14 in the chat: the model and options chosen on buttons that show each choice's price and
remembered; a plain text is a picture order; an album is one edit; results come as a photo and
their original file, with Again, Edit this and Animate under them; /history sends one again.

The real bot loop against the Bot API sandbox, with the fake providers in the in-process pool.
"""
from __future__ import annotations

import time

import pytest
from django.core.files.storage import default_storage

from billing import selectors as billing_selectors
from billing.models import Customer
from billing.money import format_amount
from jobs import selectors as job_selectors
from jobs.models import Job, JobStatus
from jobs.services.workflow import build_request
from telegram_bot.models import OrderSettings
from tests.helpers import make_customer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def _buttons(message) -> list[dict]:
    return [b for row in (message.get("reply_markup") or {}).get("inline_keyboard") or [] for b in row]


def _has_button(fragment):
    return lambda message: any(fragment in b["text"] for b in _buttons(message))


def _funded_chat(bot, balance=500_000, **profile):
    chat = bot.chat(**profile)
    make_customer(telegram_id=chat.chat_id, balance=balance, language=profile.get("language", "en"))
    return chat


def _money(kopecks: int, language: str = "en") -> str:
    return format_amount(kopecks, language)


def _order_picture(chat, prompt: str) -> dict:
    """A plain text (a picture with the remembered settings), confirmed; returns the result's photo message."""
    chat.send(prompt)
    quote = chat.wait_for(_has_button("Start for"))
    chat.press(quote, "Start for")
    return chat.wait_for(lambda m: "photo" in m, timeout=30)


def _pick(chat, screen: dict, label: str) -> dict:
    """Press the settings button starting with ``label``; returns the redrawn screen."""
    button = next(b for b in _buttons(screen) if b["text"].lstrip("✓ ").startswith(label))
    before = screen.get("text")
    chat.state.user_presses(chat.chat_id, screen["message_id"], button["callback_data"])
    return chat.wait_for(lambda m: m["message_id"] == screen["message_id"] and m.get("text") != before
                         and any(b["text"].startswith("✓ " + label) for b in _buttons(m)), since_mark=False)


def test_choosing_nano_banana_pro_16_9_2k_shows_each_choices_price_and_is_remembered_for_the_next_order(bot):
    chat = _funded_chat(bot)
    chat.send("/settings")
    chat.press(chat.wait_for(_has_button("Pictures")), "Pictures")
    screen = chat.wait_for(_has_button("Done"))
    offers = job_selectors.offers(kind="image")
    for offer in offers:  # every model's button shows that model's price
        label = next(b["text"] for b in _buttons(screen) if offer.title in b["text"])
        assert _money(job_selectors.quote(kind="image", model=offer.key, options={})) in label
    pro = next(o for o in offers if o.key == "nano-banana-pro")
    screen = _pick(chat, screen, pro.title)
    screen = _pick(chat, screen, "16:9")
    two_k = next(b["text"] for b in _buttons(screen) if b["text"].lstrip("✓ ").startswith("2K"))
    price = job_selectors.quote(kind="image", model="nano-banana-pro", options={"aspect_ratio": "16:9", "image_size": "2K"})
    assert _money(price) in two_k  # the price of the order with this choice, before it is chosen
    screen = _pick(chat, screen, "2K")
    chat.press(screen, "Done")
    remembered = OrderSettings.objects.get(customer__telegram_id=chat.chat_id, group="picture")
    assert (remembered.model, remembered.options) == ("nano-banana-pro", {"aspect_ratio": "16:9", "image_size": "2K"})

    chat.send("a lighthouse at dusk")  # plain text from the main menu: a picture with those settings
    quote = chat.wait_for(_has_button("Start for"))
    assert pro.title in quote["text"] and "16:9" in quote["text"] and "2K" in quote["text"]
    assert _money(price) in next(b["text"] for b in _buttons(quote) if "Start for" in b["text"])
    chat.press(quote, "Start for")
    photo = chat.wait_for(lambda m: "photo" in m, timeout=30)
    job = Job.objects.get(customer__telegram_id=chat.chat_id)
    assert job.cost_estimate == price and job.options["image_size"] == "2K" and job.options["aspect_ratio"] == "16:9"
    assert "a lighthouse at dusk" in photo["caption"] and pro.title in photo["caption"]


def test_a_2k_picture_comes_with_its_original_file_as_a_document_of_the_full_size(bot):
    chat = _funded_chat(bot)
    customer = chat.chat_id
    OrderSettings.objects.create(customer=Customer.objects.get(telegram_id=customer), group="picture",
                                 model="nano-banana-pro", options={"image_size": "2K"})
    _order_picture(chat, "a red fox")
    document = chat.wait_for(lambda m: "document" in m, timeout=30)
    job = Job.objects.get(customer__telegram_id=customer)
    assert document["document"]["file_size"] == default_storage.size(job.result_files[0])
    assert document["document"]["mime_type"] == job.result_mime


def test_a_1k_picture_has_an_original_file_button_that_sends_the_full_file(bot):
    chat = _funded_chat(bot)
    photo = _order_picture(chat, "a blue bird")
    time.sleep(1.0)
    assert not [m for m in chat.bot_messages(since_mark=False) if "document" in m]  # none unasked at 1K
    chat.press(photo, "Original file")
    document = chat.wait_for(lambda m: "document" in m)
    job = Job.objects.get(customer__telegram_id=chat.chat_id)
    assert document["document"]["file_size"] == default_storage.size(job.result_files[0])


def test_again_quotes_the_same_order_anew_and_charges_a_new_reservation(bot):
    chat = _funded_chat(bot, balance=100_000)
    photo = _order_picture(chat, "a green tree")
    first = Job.objects.get(customer__telegram_id=chat.chat_id)
    chat.press(photo, "Again")
    quote = chat.wait_for(_has_button("Start for"))  # nothing starts without the new quote's button
    assert Job.objects.filter(customer__telegram_id=chat.chat_id).count() == 1
    chat.press(quote, "Start for")
    chat.wait_for(lambda m: "photo" in m, timeout=30)
    second = Job.objects.exclude(pk=first.pk).get(customer__telegram_id=chat.chat_id)
    assert (second.prompt, second.options) == (first.prompt, first.options)
    assert second.reservation_id and second.reservation_id != first.reservation_id
    customer = first.customer
    assert billing_selectors.get_balance(customer) == 100_000 - first.cost_actual - second.cost_actual


def test_edit_this_makes_the_result_the_input_and_animate_makes_a_video_of_it(bot):
    chat = _funded_chat(bot)
    photo = _order_picture(chat, "a castle")
    first = Job.objects.get(customer__telegram_id=chat.chat_id)
    chat.press(photo, "Edit this")
    chat.wait_text("change in this picture")
    chat.send("add snow")
    chat.press(chat.wait_for(_has_button("Start for")), "Start for")
    chat.wait_for(lambda m: "photo" in m, timeout=30)
    edit = Job.objects.filter(customer__telegram_id=chat.chat_id).latest("pk")
    assert edit.kind == "image_edit"
    assert build_request(edit).input_images[0][0] == default_storage.open(first.result_files[0]).read()

    chat.press(photo, "Animate")
    chat.wait_text("Describe the motion")
    chat.send("the flags wave")
    quote = chat.wait_for(_has_button("Start for"))
    assert "Video from a photo" in quote["text"]
    chat.press(quote, "Start for")
    chat.wait_for(lambda m: "video" in m or "document" in m, timeout=60)
    assert Job.objects.filter(customer__telegram_id=chat.chat_id).latest("pk").kind == "video_image"


def test_three_photos_of_an_album_in_separate_updates_become_one_job_with_three_inputs(bot, settings):
    settings.BOT_ALBUM_DEBOUNCE = 0.6
    chat = _funded_chat(bot)
    chat.send_photo("put them in one picture", media_group_id="album-1", size=(300, 300))
    for side in (310, 320):
        chat.send_photo(media_group_id="album-1", size=(side, side))
    chat.mark = 0
    quote = chat.wait_for(_has_button("Start for"))
    assert "From 3 pictures" in quote["text"]
    chat.mark = chat._last_seq()
    chat.assert_quiet(1.5)  # one quote for the album, not one per photo
    chat.press(quote, "Start for")
    chat.wait_for(lambda m: "photo" in m, timeout=30)
    [job] = Job.objects.filter(customer__telegram_id=chat.chat_id)
    assert job.kind == "image_edit" and len(build_request(job).input_images) == 3


def test_an_album_without_a_caption_asks_for_one_and_the_next_text_is_it(bot, settings):
    settings.BOT_ALBUM_DEBOUNCE = 0.4
    chat = _funded_chat(bot)
    chat.send_photo(media_group_id="album-2")
    chat.send_photo(media_group_id="album-2")
    chat.mark = 0
    chat.wait_text("your 2 photos")
    chat.send("swap the colours")
    quote = chat.wait_for(_has_button("Start for"))
    assert "From 2 pictures" in quote["text"] and "swap the colours" in quote["text"]


def test_history_sends_a_kept_result_again(bot):
    chat = _funded_chat(bot)
    _order_picture(chat, "a quiet harbour")
    job = Job.objects.get(customer__telegram_id=chat.chat_id, status=JobStatus.COMPLETED)
    chat.send("/history")
    page = chat.wait_for(_has_button(f"#{job.pk}"))
    chat.press(page, f"#{job.pk}")
    again = chat.wait_for(lambda m: "photo" in m)
    assert "a quiet harbour" in again["caption"]
