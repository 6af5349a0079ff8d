"""/history: one line per money movement and per job with what it cost, every word in the
customer's language, times in TIME_ZONE with the zone's name, and pages beyond the newest 10."""
from __future__ import annotations

import io
import re
from datetime import timedelta
from datetime import timezone as dt_timezone

import pytest
from PIL import Image

from billing import services as billing
from jobs import services as job_services
from jobs.models import Job
from payments import services as payment_services
from telegram_bot.models import OutboxMessage
from tests.helpers import make_customer
from tests.telegram_bot.conftest import new_chat_id
from tests.telegram_bot.direct import Person, direct_bot  # noqa: F401 - the fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.fixture
def bot(direct_bot):  # noqa: F811
    return direct_bot


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (512, 512), (20, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def _finished_job(customer, *, kind: str, prompt: str, failed: bool = False, **inputs) -> Job:
    job = job_services.submit_job(customer=customer, kind=kind, prompt=prompt, **inputs)
    claimed = job_services.claim_job(job_id=job.pk)
    if failed:
        job_services.fail_job(job=claimed, error_code="test", message="не вышло")
    else:
        job_services.complete_job(job=claimed, result_files=[], result_mime="image/png")
    return Job.objects.get(pk=job.pk)


def _a_customer_with_a_history(language: str):
    """A card top-up, a Stars top-up, a photo edit done, a picture failed, a video running."""
    person_id = new_chat_id()
    customer = make_customer(telegram_id=person_id, language=language)
    billing.credit_balance(customer=customer, amount=50_000, idempotency_key=f"yookassa:{person_id}", source="yookassa")
    stars = payment_services.create_stars_topup(customer=customer, stars=100)
    invoice = payment_services.build_stars_invoice(payment=stars)
    payment_services.confirm_stars_payment(
        payload=invoice.payload, currency="XTR", total_amount=100, telegram_payment_charge_id=f"c-{person_id}",
        telegram_user_id=person_id,
    )
    edit = _finished_job(customer, kind="image_edit", prompt="сделай небо синим", input_image=_png())
    failed = _finished_job(customer, kind="image", prompt="кот в шляпе", failed=True)
    running = job_services.submit_job(customer=customer, kind="video_text", prompt="волны", duration=5, mode="std")
    return customer, edit, failed, running


def _history_text(bot, customer) -> tuple[str, dict | None]:
    person = Person(bot, customer.telegram_id, language=customer.language)
    person.send("/history")
    row = OutboxMessage.objects.filter(chat_id=customer.telegram_id).order_by("-id").first()
    return row.params["text"], row.params.get("reply_markup")


def test_the_russian_history_has_one_line_per_job_with_its_cost_and_no_english(bot, settings):
    settings.TIME_ZONE = "Europe/Moscow"
    customer, edit, failed, running = _a_customer_with_a_history("ru")
    text, markup = _history_text(bot, customer)
    lines = text.splitlines()
    assert lines[0] == "История, страница 1:" and len(lines) == 1 + 5 and markup is None
    # Newest first (jobs numbered with "№", as in the chat's messages about them): the running video, the failed picture, the edit, the Stars, the card.
    assert lines[1].endswith(f"  {_price(running.cost_estimate)} в резерве  Видео №{running.pk} «волны»: в очереди")
    assert lines[2].endswith(f"0\u00a0₽  Картинка №{failed.pk} «кот в шляпе»: не удалось, деньги возвращены")
    assert lines[3].endswith(f"-{_price(edit.cost_actual)}  Изменение фото №{edit.pk} «сделай небо синим»: готово")
    assert lines[4].endswith("+100\u00a0₽  Пополнение звёздами Telegram")
    assert lines[5].endswith("+500\u00a0₽  Пополнение картой")
    # One line per job: no reservation, charge or release rows, and no kind codes or staff text.
    assert sum(f"№{edit.pk}" in line for line in lines) == 1
    latin = set(re.findall(r"[A-Za-z_]+", text)) - {"MSK", "Telegram"}
    assert latin == set(), latin
    # Times in Moscow time, named.
    moscow = (edit.created_at + timedelta(hours=3)).strftime("%d.%m %H:%M")
    assert lines[3].startswith(f"{moscow} (MSK)  ")


def test_the_english_history_says_the_same_in_english(bot, settings):
    settings.TIME_ZONE = "UTC"
    customer, edit, failed, running = _a_customer_with_a_history("en")
    text, _markup = _history_text(bot, customer)
    lines = text.splitlines()
    assert lines[0] == "History, page 1:"
    assert lines[1].endswith(f"  ₽{running.cost_estimate // 100} reserved  Video #{running.pk} “волны”: queued")
    assert lines[2].endswith(f"₽0  Picture #{failed.pk} “кот в шляпе”: failed, the money was returned")
    assert lines[3].endswith(f"-₽{edit.cost_actual // 100}  Photo edit #{edit.pk} “сделай небо синим”: ready")
    assert lines[4].endswith("+₽100  Top-up with Telegram Stars") and lines[5].endswith("+₽500  Top-up by card")
    assert lines[3].startswith(f"{edit.created_at.astimezone(dt_timezone.utc):%d.%m %H:%M} (UTC)  ")


def test_pages_go_beyond_the_newest_ten(bot):
    customer = make_customer(telegram_id=new_chat_id(), language="en")
    for i in range(25):
        billing.credit_balance(customer=customer, amount=(i + 1) * 100, idempotency_key=f"bonus:{customer.pk}:{i}", source="bonus")
    person = Person(bot, customer.telegram_id)

    def page(action) -> tuple[list[str], list[tuple[str, str]]]:
        action()
        row = OutboxMessage.objects.filter(chat_id=customer.telegram_id).order_by("-id").first()
        buttons = [(b["text"], b["callback_data"]) for r in (row.params.get("reply_markup") or {}).get("inline_keyboard", []) for b in r]
        return row.params["text"].splitlines(), buttons

    first, buttons = page(lambda: person.send("/history"))
    assert len(first) == 11 and first[1].endswith("+₽25  Bonus") and first[10].endswith("+₽16  Bonus")
    assert buttons == [("◀ Older", "h:1")]
    second, buttons = page(lambda: person.press("h:1"))
    assert second[0] == "History, page 2:" and second[1].endswith("+₽15  Bonus") and second[10].endswith("+₽6  Bonus")
    assert buttons == [("◀ Older", "h:2"), ("Newer ▶", "h:0")]
    third, buttons = page(lambda: person.press("h:2"))
    assert len(third) == 6 and third[5].endswith("+₽1  Bonus") and buttons == [("Newer ▶", "h:1")]
    beyond, buttons = page(lambda: person.press("h:3"))
    assert beyond == ["There is nothing older."] and buttons == [("Newer ▶", "h:2")]


def _price(kopecks: int) -> str:
    return f"{kopecks // 100}\u00a0₽"
