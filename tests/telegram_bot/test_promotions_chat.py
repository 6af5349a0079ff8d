"""Promotions in the chat, through the real bot (middleware + handlers) run on built updates and
promotions' real services: /start's deep links and the welcome bonus, /promo, /invite, the
top-up buttons with their package bonus, and what the receivers tell (ru and en)."""
from __future__ import annotations

import urllib.parse
import uuid
from datetime import timedelta

import pytest
from django.utils import translation

from billing import selectors as billing_selectors
from billing.models import Customer
from payments.models import Payment
from promotions import selectors as promotion_selectors
from promotions import services as promotion_services
from promotions.exceptions import PromoCodeNotValid
from promotions.models import PromoRedemption, Referral, TopUpPackage
from telegram_bot.models import Conversation, DialogueState, OutboxMessage
from tests.helpers import make_customer
from tests.telegram_bot.conftest import new_chat_id
from tests.telegram_bot.direct import BOT, Person, direct_bot  # noqa: F401 - the fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.fixture
def bot(direct_bot, settings):  # noqa: F811
    settings.WELCOME_BONUS_KOPECKS = 0
    settings.REFERRAL_SIGNUP_BONUS_KOPECKS = 5_000
    settings.REFERRAL_PERCENT = 10
    settings.REFERRAL_MONTHS = 6
    return direct_bot


@pytest.fixture
def packages(db):
    """The seeded packages (a transactional test's flush removes migration data): 100, 300,
    500 +5 %, 1 000 +10 % ₽."""
    TopUpPackage.objects.all().delete()
    for position, (amount, bonus) in enumerate([(10_000, 0), (30_000, 0), (50_000, 5), (100_000, 10)]):
        TopUpPackage.objects.create(amount=amount, bonus_percent=bonus, position=position)


def _person(bot, language: str = "en", first_name: str = "Ann") -> Person:
    person = Person(bot, new_chat_id(), language=language)
    person.user["first_name"] = first_name
    return person


def _customer(person: Person) -> Customer:
    return Customer.objects.get(telegram_id=person.user["id"])


def _state(person: Person) -> str:
    conversation = Conversation.objects.filter(chat_id=person.chat["id"]).first()
    return conversation.state if conversation else DialogueState.IDLE


def _chat_texts(telegram_id: int) -> list[str]:
    return [row.params.get("text", "") for row in OutboxMessage.objects.filter(chat_id=telegram_id).order_by("id")]


def _last_markup(person: Person) -> dict:
    return OutboxMessage.objects.filter(chat_id=person.chat["id"]).order_by("-id").first().params["reply_markup"]


def _labels(markup: dict) -> list[str]:
    return [button["text"] for row in markup["inline_keyboard"] for button in row]


def _pay_stars(person: Person, payment: Payment) -> None:
    person.pays(payment, charge=f"charge-{uuid.uuid4().hex}")


def _amount_code(code="SPRING", amount=10_000, **rules):
    return promotion_services.create_promo_code(code=code, amount=amount, max_redemptions=rules.pop("max_redemptions", 10), **rules)


# --- /start with a deep link, and the welcome bonus ----------------------------------------


@pytest.mark.parametrize("language, joined, told", [
    ("en", "You joined through a friend's invitation", "Bob joined through your invitation."),
    ("ru", "Вы пришли по приглашению друга", "Bob пришёл(а) по вашему приглашению."),
])
def test_start_through_an_invitation_attributes_the_new_customer_and_tells_the_referrer(bot, language, joined, told):
    referrer = make_customer(language=language)
    newcomer = _person(bot, language=language, first_name="Bob")
    newcomer.user["last_name"], newcomer.user["username"] = "Secret", "bob_private"
    newcomer.send(f"/start r_{promotion_selectors.referral_code(referrer)}")

    assert Referral.objects.get(referee=_customer(newcomer)).referrer == referrer
    assert joined in newcomer.texts()[-1]
    [message] = _chat_texts(referrer.telegram_id)
    assert message.startswith("🤝 " + told)
    assert ("₽50" if language == "en" else "50\u00a0₽") in message  # the rules: what a friend's top-up brings
    assert "Secret" not in message and "bob_private" not in message


def test_start_with_ones_own_code_a_second_time_or_a_garbled_payload_attributes_nothing(bot):
    person = _person(bot)
    person.send("/start")
    own = promotion_selectors.referral_code(_customer(person))
    for payload in (f"r_{own}", f"r_{own.lower()}x", "r_" + "x" * 80, "p_", "../../etc/passwd", "r_a b", "x_1", "r_"):
        person.send(f"/start {payload}")
    greetings = person.texts()
    assert len(greetings) == 9 and set(greetings) == {
        "Hello, Ann! I make pictures and short videos with AI.\nYour balance: ₽0.\n\nChoose what to do:"
    }
    assert not Referral.objects.exists()


def test_an_old_customer_following_a_link_is_not_attributed(bot):
    referrer, old = make_customer(), make_customer()
    Customer.objects.filter(pk=old.pk).update(created_at=old.created_at - timedelta(days=2))
    person = Person(bot, old.telegram_id)
    person.send(f"/start r_{promotion_selectors.referral_code(referrer)}")
    assert not Referral.objects.exists() and "invitation" not in person.texts()[-1]
    assert _chat_texts(referrer.telegram_id) == []


def test_start_with_a_promo_code_credits_it_and_the_welcome_bonus_once(bot, settings):
    settings.WELCOME_BONUS_KOPECKS = 5_000
    _amount_code("SPRING", 10_000)
    person = _person(bot)
    person.send("/start p_spring")
    person.send("/start p_SPRING")

    first, second = person.texts()
    assert "🎁 Welcome bonus: ₽50 on your balance." in first
    assert "🎁 Promo code accepted: +₽100." in first and "Your balance: ₽150." in first
    assert "Welcome bonus" not in second and "You have already used this promo code." in second
    assert "Your balance: ₽150." in second
    assert billing_selectors.get_balance(_customer(person)) == 15_000  # no second message told it twice


@pytest.mark.parametrize("language", ["en", "ru"])
def test_start_with_a_code_that_does_not_work_greets_and_says_so_in_the_customers_language(bot, language):
    person = _person(bot, language=language)
    person.send("/start p_NOSUCHCODE")
    with translation.override(language):
        refusal = str(PromoCodeNotValid())
    [greeting] = person.texts()
    assert refusal in greeting and ("Hello" in greeting) == (language == "en")


# --- /promo --------------------------------------------------------------------------------


def test_promo_asks_for_the_code_a_wrong_one_asks_again_and_the_right_one_credits(bot):
    _amount_code("SPRING", 10_000)
    person = _person(bot)
    person.send("/promo")
    assert person.texts()[-1] == "Send the promo code (or /cancel)."
    assert _state(person) == DialogueState.PROMO_CODE
    person.send("WINTER")
    assert person.texts()[-1] == "This promo code does not work. Check it and try again.\nSend the code again, or /cancel."
    assert _state(person) == DialogueState.PROMO_CODE
    person.send("  spring ")
    assert person.texts()[-1] == "🎁 Promo code accepted: +₽100. Your balance: ₽100."
    assert _state(person) == DialogueState.IDLE
    person.send("/promo spring")
    assert person.texts()[-1] == "You have already used this promo code."
    assert PromoRedemption.objects.filter(customer=_customer(person)).count() == 1


@pytest.mark.parametrize("language, refusal", [
    ("en", "This promo code does not work. Check it and try again."),
    ("ru", "Этот промокод не действует. Проверьте его и попробуйте ещё раз."),
])
def test_a_wrong_code_reads_the_same_whether_unknown_or_used_up(bot, language, refusal):
    _amount_code("ONCE", 1_000, max_redemptions=1)
    promotion_services.redeem_promo_code(customer=make_customer(), code="ONCE")
    person = _person(bot, language=language)
    person.send("/promo ONCE")
    person.send("/promo NEVER")
    assert [text.split("\n")[0] for text in person.texts()] == [refusal, refusal]


def test_cancel_leaves_the_promo_dialogue_and_the_next_text_is_no_code(bot):
    _amount_code("SPRING", 10_000)
    person = _person(bot)
    person.send("/promo")
    person.send("/cancel")
    assert _state(person) == DialogueState.IDLE
    person.send("SPRING")  # now a picture's description
    assert not PromoRedemption.objects.exists()
    assert "Promo code accepted" not in person.texts()[-1]


def test_a_percent_code_waits_for_the_next_top_up_and_the_top_up_screen_says_so(bot, packages):
    promotion_services.create_promo_code(code="PLUS15", percent=15, max_redemptions=10)
    person = _person(bot, language="ru")
    person.send("/promo plus15")
    assert person.texts()[-1] == "🎁 Промокод принят: +15 % к следующему пополнению."
    person.send("/topup")
    assert "🎁 Ваш промокод добавит 15 % к этому пополнению." in person.texts()[-1]


# --- /invite -------------------------------------------------------------------------------


def test_invite_shows_the_link_the_rules_and_what_the_friends_brought(bot, packages):
    referrer_person = _person(bot)
    referrer_person.send("/start")
    referrer = _customer(referrer_person)
    code = promotion_selectors.referral_code(referrer)
    friends = [_person(bot, first_name=name) for name in ("Bob", "Eve")]
    for friend in friends:
        friend.send(f"/start r_{code}")
    friends[0].press("p:st:30000")
    _pay_stars(friends[0], Payment.objects.get(customer=_customer(friends[0])))

    referrer_person.send("/invite")
    link = f"https://t.me/{BOT['username']}?start=r_{code}"
    text = referrer_person.texts()[-1]
    assert link in text
    assert "• ₽50 when their first top-up goes through" in text
    assert "• 10 % of each of their top-ups for 6 months" in text
    assert "Joined: 2, topped up: 1. You earned: ₽80." in text  # ₽50 + 10 % of ₽300
    [share] = _last_markup(referrer_person)["inline_keyboard"][0]
    assert share["text"] == "📤 Share the link"
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(share["url"]).query)["url"] == [link]
    # The referrer was told of each friend and of each bonus, in that order.
    told = referrer_person.texts()[1:-1]
    assert [t.split("\n")[0] for t in told[:2]] == ["🤝 Bob joined through your invitation.", "🤝 Eve joined through your invitation."]
    assert told[2:] == [
        "🤝 Your friend made their first top-up: +₽50 for you. Your balance: ₽50.",
        "🤝 Your friend topped up: +₽30 for you. Your balance: ₽80.",
    ]


# --- the top-up buttons and their package bonus ---------------------------------------------


def test_the_top_up_buttons_show_the_package_bonuses_and_a_stars_top_up_keeps_and_credits_its_bonus(bot, packages):
    person = _person(bot)
    person.send("/topup")
    assert _labels(_last_markup(person)) == ["₽100", "₽300", "₽500 +5 %", "₽1,000 +10 %", "Other amount"]
    person.press("t:100000")
    assert person.texts()[-1] == "Top up by ₽1,000, +10 % bonus. Choose how to pay:"
    person.press("p:st:100000")
    payment = Payment.objects.get(customer=_customer(person))
    assert payment.provider == "stars" and payment.metadata["bonus_percent"] == 10
    _pay_stars(person, payment)
    assert person.texts()[-1] == "✅ Payment received: ₽1,000, and a bonus of ₽100. Your balance: ₽1,100."
    assert billing_selectors.get_balance(_customer(person)) == 110_000
    assert sum("bonus" in text for text in person.texts()) == 2  # the method screen, the payment: no third message


def test_a_yookassa_top_up_keeps_the_bonus_of_its_package_and_a_typed_amount_gets_the_largest_it_reaches(bot, packages, settings):
    from standins.yookassa import YooKassaStub

    stub = YooKassaStub(shop_id="test-shop", secret_key="test-secret").start()
    try:
        settings.YOOKASSA_SHOP_ID, settings.YOOKASSA_SECRET_KEY = stub.shop_id, stub.secret_key
        settings.YOOKASSA_API_URL, settings.YOOKASSA_RECEIPTS = stub.api_url, False
        person = _person(bot, language="ru")
        person.press("t:custom")
        person.send("750")
        assert person.texts()[-1] == "Пополнение на 750\u00a0₽, бонус +5 %. Выберите способ оплаты:"
        person.press("p:yk:75000")
        payment = Payment.objects.get(customer=_customer(person))
        assert payment.provider == "yookassa" and payment.metadata["bonus_percent"] == 5
        assert _labels(_last_markup(person)) == ["Оплатить 750\u00a0₽"]
    finally:
        stub.stop()


def test_with_every_package_switched_off_the_buttons_are_the_presets_without_a_bonus(bot, packages, settings):
    TopUpPackage.objects.update(is_active=False)
    person = _person(bot)
    person.send("/topup")
    assert _labels(_last_markup(person)) == ["₽100", "₽300", "₽500", "₽1,000", "Other amount"]
    person.press("p:st:50000")
    assert Payment.objects.get(customer=_customer(person)).metadata["bonus_percent"] == 0


def test_help_lists_promo_and_invite(bot):
    person = _person(bot)
    person.send("/help")
    assert "/promo" in person.texts()[-1] and "/invite" in person.texts()[-1]


# --- refunds take bonuses back, and say so -------------------------------------------------


def _refund(payment: Payment) -> None:
    from payments import services as payment_services

    payment.refresh_from_db()
    payment_services.refund_payment(payment=payment, amount=payment.amount, idempotency_key=uuid.uuid4())


@pytest.mark.parametrize("language, expected", [
    ("en", "↩️ Your top-up was refunded, so ₽100 of its bonus was taken back. Your balance: ₽0."),
    ("ru", "↩️ Ваше пополнение возвращено, поэтому 100\u00a0₽ его бонуса списано. Ваш баланс: 0\u00a0₽."),
])
def test_a_refunded_top_up_takes_its_package_bonus_back_and_tells_the_payer(bot, packages, language, expected):
    person = _person(bot, language=language)
    person.press("p:st:100000")
    payment = Payment.objects.get(customer=_customer(person))
    _pay_stars(person, payment)
    _refund(payment)
    assert expected in person.texts()
    assert billing_selectors.get_balance(_customer(person)) == 0


@pytest.mark.parametrize("language, expected", [
    ("en", ["↩️ Your friend's top-up was refunded, so ₽50 of the bonus you got for it was taken back. Your balance: ₽30.",
            "↩️ Your friend's top-up was refunded, so ₽30 of the bonus you got for it was taken back. Your balance: ₽0."]),
    ("ru", ["🤝 Ваш друг впервые пополнил баланс: вам +50\u00a0₽. Ваш баланс: 50\u00a0₽.",
            "🤝 Ваш друг пополнил баланс: вам +30\u00a0₽. Ваш баланс: 80\u00a0₽.",
            "↩️ Пополнение вашего друга возвращено, поэтому 50\u00a0₽ бонуса за него списано. Ваш баланс: 30\u00a0₽."]),
])
def test_a_friends_refunded_top_up_takes_the_referral_bonus_back_and_tells_the_referrer(bot, packages, language, expected):
    referrer = make_customer(language=language)
    friend = _person(bot, first_name="Bob")
    friend.send(f"/start r_{promotion_selectors.referral_code(referrer)}")
    friend.press("p:st:30000")
    payment = Payment.objects.get(customer=_customer(friend))
    _pay_stars(friend, payment)
    _refund(payment)
    told = _chat_texts(referrer.telegram_id)
    assert all(line in told for line in expected), told


def test_a_bonus_already_spent_is_written_off_without_a_message(bot, packages):
    from billing import services as billing

    referrer = make_customer()
    friend = _person(bot)
    friend.send(f"/start r_{promotion_selectors.referral_code(referrer)}")
    friend.press("p:st:30000")
    payment = Payment.objects.get(customer=_customer(friend))
    _pay_stars(friend, payment)
    billing.debit_balance(customer=referrer, amount=8_000, idempotency_key=f"spent:{referrer.pk}", destination="adjustments")
    before = _chat_texts(referrer.telegram_id)
    _refund(payment)
    assert _chat_texts(referrer.telegram_id) == before
