"""End to end: the real bot loop (telebot polling, middleware, handlers, outbox, sender) against the
local Bot API sandbox, with the real payments and jobs services behind it."""
from __future__ import annotations

import re
import time

import pytest
import requests

from billing import selectors as billing_selectors
from billing.models import Customer
from genbot import counters
from jobs.models import Job, JobStatus
from payments.models import Payment, PaymentStatus
from standins.yookassa import YooKassaStub
from tests.helpers import make_customer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.fixture(autouse=True)
def sandbox_answers_follow_the_bot_api(sandbox):
    """Every answer the sandbox gives in these tests has Telegram's published types
    (tests/telegram_bot/bot_api_spec.py): required fields present, no unknown ones."""
    import json

    from tests.telegram_bot.bot_api_spec import load_spec

    spec = load_spec()
    answers = []
    # A copy as it goes over the wire: the sandbox keeps changing its own objects (edits).
    sandbox.state.on_answer = lambda method, result: answers.append((method, json.loads(json.dumps(result))))
    yield
    sandbox.state.on_answer = None
    assert answers, "the sandbox answered nothing"
    wrong = {f"{method}: {error}" for method, result in answers for error in spec.check_result(method, result)}
    assert not wrong, sorted(wrong)


def _has_button(fragment):
    def check(message):
        rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
        return any(fragment in b["text"] for row in rows for b in row)
    return check


def _choose_video(chat, *choices):
    """/video, then press each choice (duration, aspect ratio, mode) until the bot asks for a description."""
    chat.send("/video")
    for choice in choices:
        chat.press(chat.wait_for(_has_button(choice)), choice)
    chat.wait_text("description of the video")


def _funded_chat(bot, balance=100_000, **profile):
    chat = bot.chat(**profile)
    make_customer(telegram_id=chat.chat_id, balance=balance, language=profile.get("language", "en"))
    return chat


def test_start_creates_the_customer_in_telegrams_language_and_shows_the_menu(bot):
    chat = bot.chat(language="ru", first_name="Иван")
    chat.send("/start")
    reply = chat.wait_text("Иван")
    customer = Customer.objects.get(telegram_id=chat.chat_id)
    assert customer.language == "ru"
    assert "Ваш баланс" in reply["text"]
    assert _has_button("Баланс")(reply) and _has_button("Пополнить")(reply)


def test_topup_through_fake_yookassa_then_a_picture_arrives_and_the_balance_fell_by_its_price(bot, settings, live_server):
    stub = YooKassaStub().start()
    try:
        settings.YOOKASSA_SHOP_ID, settings.YOOKASSA_SECRET_KEY = stub.shop_id, stub.secret_key
        settings.YOOKASSA_API_URL = stub.api_url
        settings.YOOKASSA_ALLOWED_IPS = ["127.0.0.1"]
        settings.YOOKASSA_RECEIPTS = False
        stub.webhook_url = f"{live_server.url}/webhook/yookassa"

        chat = bot.chat(language="en")
        chat.send("/start")
        menu = chat.wait_text("Your balance")
        chat.press(menu, "Top up")
        amounts = chat.wait_for(_has_button("Other amount"))
        chat.press(amounts, "₽500")
        methods = chat.wait_for(_has_button("YooKassa"))
        chat.press(methods, "YooKassa")
        pay = chat.wait_for(_has_button("Pay ₽500"))
        url = pay["reply_markup"]["inline_keyboard"][0][0]["url"]
        # The person opens the checkout page and pays; the stub sends the webhook to the web app.
        page = requests.get(url, timeout=10)
        assert page.status_code == 200 and "500.00" in page.text
        requests.post(url, data={"action": "pay"}, timeout=10, allow_redirects=False)
        chat.wait_text("Payment received: ₽500", since_mark=False)
        customer = Customer.objects.get(telegram_id=chat.chat_id)
        assert billing_selectors.get_balance(customer) == 50_000
        assert Payment.objects.get(customer=customer).status == PaymentStatus.SUCCEEDED

        chat.send("/picture a lighthouse at dawn")
        offer = chat.wait_for(_has_button("Start for"))
        price = int(re.search(r"Start for ₽(\d+)", offer["reply_markup"]["inline_keyboard"][0][0]["text"]).group(1)) * 100
        chat.press(offer, "Start for")
        photo = chat.wait_for(lambda m: "photo" in m, timeout=30)
        assert "Picture #" in photo["caption"]
        data = requests.get(f"{bot.sandbox.url}/sandbox/file/{photo['photo'][-1]['file_id']}", timeout=10).content
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        job = Job.objects.get(customer=customer)
        assert job.status == JobStatus.COMPLETED and job.cost_actual == price
        assert billing_selectors.get_balance(customer) == 50_000 - price
        # The progress message was edited to its final state rather than a new one per step.
        progress = chat.wait_text(f"#{job.pk} is ready", since_mark=False)
        assert progress.get("edit_date")
    finally:
        stub.stop()


def test_a_video_from_a_prompt_arrives_as_a_video(bot):
    chat = _funded_chat(bot)
    _choose_video(chat, "5 s", "9:16", "standard")
    chat.send("waves on a beach")
    offer = chat.wait_for(_has_button("Start for"))
    assert "5 s, 9:16, standard" in offer["text"]
    chat.press(offer, "Start for")
    result = chat.wait_for(lambda m: "video" in m or "document" in m, timeout=40)
    assert "Video #" in result["caption"]
    job = Job.objects.get(customer__telegram_id=chat.chat_id)
    assert job.status == JobStatus.COMPLETED and job.options["aspect_ratio"] == "9:16"


def test_a_failing_job_says_what_happened_and_that_the_money_was_returned(bot, settings):
    settings.FAKE_PROVIDER_FAILURE_RATE = 1.0
    settings.AI_RETRY_ATTEMPTS = 1
    settings.FAKE_PROVIDER_LATENCY = 0.2
    chat = _funded_chat(bot, balance=10_000)
    chat.send("/picture a storm")
    chat.press(chat.wait_for(_has_button("Start for")), "Start for")
    failure = chat.wait_text("was returned to your balance", timeout=40)
    assert "failed" in failure["text"]
    customer = Customer.objects.get(telegram_id=chat.chat_id)
    assert Job.objects.get(customer=customer).status == JobStatus.FAILED
    assert billing_selectors.get_balance(customer) == 10_000
    assert billing_selectors.get_held(customer) == 0


def test_cancel_from_the_chat_stops_the_job_and_releases_the_money(bot, settings):
    settings.FAKE_PROVIDER_LATENCY = 8
    chat = _funded_chat(bot, balance=10_000)
    chat.send("/picture a slow painting")
    chat.press(chat.wait_for(_has_button("Start for")), "Start for")
    progress = chat.wait_for(lambda m: _has_button("Cancel")(m) and "#" in (m.get("text") or ""))
    chat.press(progress, "Cancel")
    chat.wait_text("was cancelled", since_mark=False)
    customer = Customer.objects.get(telegram_id=chat.chat_id)
    assert Job.objects.get(customer=customer).status == JobStatus.CANCELLED
    assert billing_selectors.get_balance(customer) == 10_000 and billing_selectors.get_held(customer) == 0


def test_edit_a_photo_with_a_caption_returns_a_picture(bot):
    chat = _funded_chat(bot)
    chat.send_photo("make it blue")
    offer = chat.wait_for(_has_button("Start for"))
    assert "Photo edit" in offer["text"]
    chat.press(offer, "Start for")
    chat.wait_for(lambda m: "photo" in m, timeout=30)
    assert Job.objects.get(customer__telegram_id=chat.chat_id).kind == "image_edit"


def test_jobs_lists_active_jobs_and_history_shows_money_and_results(bot, settings):
    settings.FAKE_PROVIDER_LATENCY = 6
    chat = _funded_chat(bot, balance=10_000)
    chat.send("/picture a quiet lake")
    chat.press(chat.wait_for(_has_button("Start for")), "Start for")
    chat.wait_for(lambda m: _has_button("Cancel")(m))
    chat.send("/jobs")
    listing = chat.wait_text("Your running jobs")
    job = Job.objects.get(customer__telegram_id=chat.chat_id)
    assert f"#{job.pk}" in listing["text"] and _has_button(f"#{job.pk}")(listing)
    chat.send("/history")
    history = chat.wait_text("History, page 1")
    assert f"reserved  Picture #{job.pk} “a quiet lake”" in history["text"] and "+₽100  Bonus" in history["text"]


def test_stars_topup_invoice_pre_checkout_and_successful_payment_credit_once(bot):
    chat = bot.chat(language="en")
    chat.send("/topup")
    chat.press(chat.wait_for(_has_button("Other amount")), "Other amount")
    chat.wait_text("amount in roubles")
    chat.send("250")
    methods = chat.wait_for(_has_button("Stars"))
    chat.press(methods, "Stars")
    invoice = chat.wait_for(lambda m: "invoice" in m)
    bot.sandbox.state.user_pays_invoice(chat.chat_id, invoice["message_id"])
    chat.wait_text("Payment received: ₽250", since_mark=False, timeout=20)
    customer = Customer.objects.get(telegram_id=chat.chat_id)
    assert billing_selectors.get_balance(customer) == 25_000
    assert Payment.objects.get(customer=customer, provider="stars").status == PaymentStatus.SUCCEEDED


def test_lang_switches_every_later_answer(bot):
    chat = bot.chat(language="en")
    chat.send("/lang")
    chat.press(chat.wait_text("Choose the language"), "Русский")
    chat.wait_text("Язык: русский")
    chat.send("/balance")
    chat.wait_text("Ваш баланс")
    assert Customer.objects.get(telegram_id=chat.chat_id).language == "ru"


def test_a_flood_is_answered_once_with_the_time_then_processes_nothing(bot, settings):
    settings.BOT_FLOOD_LIMIT = 3
    refused_before = counters.read_all().get("rate_limit_refusals", 0)
    chat = bot.chat(language="en")
    for _ in range(6):
        chat.state.user_sends(chat.chat_id, "/balance")
    refusal = chat.wait_text("too fast", since_mark=False)
    assert re.search(r"for \d+ s", refusal["text"])
    time.sleep(4)
    answers = chat.bot_messages(since_mark=False)
    assert sum("Your balance" in (m.get("text") or "") for m in answers) == 3
    assert sum("too fast" in (m.get("text") or "") for m in answers) == 1
    # Every refusal is counted for /metrics, not only the one answered.
    assert counters.read_all().get("rate_limit_refusals", 0) - refused_before == 3


def test_blocked_customers_are_refused(bot):
    chat = bot.chat(language="en")
    customer = make_customer(telegram_id=chat.chat_id, language="en")
    Customer.objects.filter(pk=customer.pk).update(is_blocked=True)
    chat.send("/picture a cat")
    chat.wait_text("account is blocked")
    assert not Job.objects.filter(customer=customer).exists()


def test_a_video_from_a_photo_arrives_even_when_the_person_wrote_meanwhile(bot, settings):
    settings.FAKE_PROVIDER_LATENCY = 2
    chat = _funded_chat(bot)
    _choose_video(chat, "10 s", "1:1", "pro")
    chat.send_photo("make the sea move")
    offer = chat.wait_for(_has_button("Start for"))
    assert "Video from a photo" in offer["text"] and "10 s, 1:1, pro" in offer["text"]
    chat.press(offer, "Start for")
    progress = chat.wait_for(lambda m: "░" in (m.get("text") or "") and "%" in m["text"])
    assert _has_button("Cancel")(progress)
    chat.send("/help")  # the person goes on chatting while the video is made
    chat.wait_text("What I can do")
    result = chat.wait_for(lambda m: "video" in m or "document" in m, timeout=40, since_mark=False)
    job = Job.objects.get(customer__telegram_id=chat.chat_id)
    assert job.kind == "video_image" and job.status == JobStatus.COMPLETED
    assert f"#{job.pk}" in result["caption"]


def test_a_customer_who_had_blocked_the_bot_is_served_and_unmarked_when_writing_again(bot):
    from billing.services import mark_bot_blocked

    chat = bot.chat(language="en")
    customer = make_customer(telegram_id=chat.chat_id, language="en")
    mark_bot_blocked(customer=customer)
    chat.send("/balance")
    chat.wait_text("Your balance")
    assert Customer.objects.get(pk=customer.pk).bot_blocked_at is None


def _callback_answer(chat, update, timeout=10):
    query_id = update["callback_query"]["id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = chat.state.callback_answers.get(query_id)
        if answer:
            return answer
        time.sleep(0.05)
    raise AssertionError("the callback was not answered")


def _keyboard_gone(chat, message, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "reply_markup" not in chat.state.find_message(chat.chat_id, message["message_id"]):
            return True
        time.sleep(0.05)
    raise AssertionError(f"message {message['message_id']} still shows its keyboard")


def _press_data(chat, message, label):
    """Press like ``chat.press``, returning the update (for its callback answer)."""
    [data] = [b["callback_data"] for row in message["reply_markup"]["inline_keyboard"] for b in row if label in b["text"]]
    chat.mark = chat._last_seq()
    return chat.state.user_presses(chat.chat_id, message["message_id"], data)


def test_an_old_picture_quotes_button_does_not_start_the_video_quoted_after_it(bot):
    chat = _funded_chat(bot)
    chat.send("/picture a lighthouse")
    picture = chat.wait_for(_has_button("Start for ₽15"))
    chat.send("/video")
    durations = chat.wait_for(_has_button("5 s"))
    assert [b["text"] for b in durations["reply_markup"]["inline_keyboard"][0]] == ["5 s · from ₽50", "10 s · from ₽100"]
    chat.press(durations, "5 s")
    chat.press(chat.wait_for(_has_button("16:9")), "16:9")
    modes = chat.wait_for(_has_button("standard"))
    assert [b["text"] for b in modes["reply_markup"]["inline_keyboard"][0]] == ["standard · ₽50", "pro · ₽90"]
    chat.press(modes, "standard")
    chat.wait_text("description of the video")
    chat.send("waves on a beach")
    video = chat.wait_for(_has_button("Start for ₽50"))
    _keyboard_gone(chat, picture)  # the superseded quote's keyboard was taken off

    # The old screen is still open on a slow phone: its button is pressed anyway.
    answer = _callback_answer(chat, _press_data(chat, picture, "Start for"))
    assert answer["text"] == "This offer has expired. Start again from the menu."
    chat.assert_quiet(1)
    customer = Customer.objects.get(telegram_id=chat.chat_id)
    assert not Job.objects.filter(customer=customer).exists()
    assert billing_selectors.get_balance(customer) == 100_000

    chat.press(video, "Start for")
    chat.wait_for(lambda m: "video" in m or "document" in m, timeout=40)
    _keyboard_gone(chat, video)  # a used quote's keyboard goes too
    job = Job.objects.get(customer=customer)
    assert job.kind == "video_text" and billing_selectors.get_balance(customer) == 100_000 - 5_000


def test_a_quote_above_the_balance_tops_up_by_stars_and_resumes_with_one_tap(bot):
    chat = _funded_chat(bot, balance=500)
    chat.send("/picture a castle")
    short = chat.wait_text("Not enough money")
    assert "Price: ₽15. Your balance: ₽5." in short["text"]
    chat.press(short, "Top up ₽100")
    chat.press(chat.wait_for(_has_button("Stars")), "Stars")
    invoice = chat.wait_for(lambda m: "invoice" in m)
    bot.sandbox.state.user_pays_invoice(chat.chat_id, invoice["message_id"])
    chat.wait_text("Payment received: ₽100", since_mark=False, timeout=20)
    resumed = chat.wait_for(_has_button("Start for ₽15"), since_mark=False, timeout=20)
    assert "Price: ₽15. Your balance: ₽105." in resumed["text"]
    _keyboard_gone(chat, short)
    customer = Customer.objects.get(telegram_id=chat.chat_id)
    assert not Job.objects.filter(customer=customer).exists()  # nothing starts before the press
    chat.press(resumed, "Start for")
    chat.wait_for(lambda m: "photo" in m, timeout=30)
    assert Job.objects.get(customer=customer).prompt == "a castle"
    assert billing_selectors.get_balance(customer) == 10_500 - 1_500
