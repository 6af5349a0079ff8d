"""What a customer can earn or redeem: the deep links of /start (an invitation ``r_<code>``, a
promo code ``p_<CODE>``) and the welcome bonus, /invite, /promo.

Each handler calls promotions' services once per update; what a service guards (once per
customer, concurrency, the attempts limit) it guards whatever the bot does. The reply says what
the customer got: the welcome bonus and an amount promo code are told here, not by the
``bonus_credited`` receiver, since only these handlers earn them.
"""
from __future__ import annotations

import re

from billing import selectors as billing_selectors
from promotions import selectors as promotion_selectors
from promotions import services as promotion_services
from promotions.exceptions import PromoCodeError, PromoCodeNotValid
from telegram_bot import keyboards, texts
from telegram_bot.handlers.base import HandlerBase, command_argument, reply
from telegram_bot.middleware import bot_username
from telegram_bot.models import DialogueState
from telegram_bot.services import clear_state, set_state

# A deep link's payload (t.me/<bot>?start=<payload>): Telegram allows [A-Za-z0-9_-], at most 64.
START_PAYLOAD = re.compile(r"(?P<kind>[rp])_(?P<code>[A-Za-z0-9_-]{1,62})")


def invite_link(username: str, customer) -> str:
    return f"https://t.me/{username}?start=r_{promotion_selectors.referral_code(customer)}"


class BonusHandlers(HandlerBase):
    def _start_news(self, customer, payload: str) -> list[str]:
        """What this /start brought, as lines of the greeting: the invitation or promo code of
        its deep link, and the welcome bonus. A payload of any other form is ignored.

        The invitation first: it counts only for a new customer, and nothing else here makes
        one old (a bonus is neither a payment nor spending).
        """
        link = START_PAYLOAD.fullmatch(payload)
        invited = bool(link and link["kind"] == "r"
                       and promotion_services.attribute_referral(customer=customer, code=link["code"]))
        welcome = promotion_services.grant_welcome_bonus(customer=customer)
        news = [texts.welcome_bonus(welcome.amount)] if welcome is not None else []
        if invited:
            news.append(texts.joined_by_invitation())
        if link and link["kind"] == "p":
            news.append(self._redeemed(customer, link["code"], with_balance=False)[0])
        return news

    def invite(self, message, data):
        chat_id, customer = message.chat.id, data["customer"]
        username = bot_username(self.bot)
        if not username:  # getMe failed: no link to give now
            return reply(chat_id, texts.internal_error())
        link = invite_link(username, customer)
        reply(chat_id, texts.invite(link, promotion_selectors.referral_summary(customer)), keyboards.share_invite(link))

    def promo(self, message, data):
        chat_id, code = message.chat.id, command_argument(message.text)
        if not code:
            set_state(chat_id, DialogueState.PROMO_CODE)
            return reply(chat_id, texts.ask_promo_code())
        self._redeem_promo(chat_id, data["customer"], code)

    def _redeem_promo(self, chat_id: int, customer, code: str):
        """``/promo CODE``, or the text after ``/promo``. A code that does not work leaves the
        question open (the next text is another try, counted by the attempts limit); redeemed,
        redeemed before, or too many attempts close it."""
        text, again = self._redeemed(customer, code, with_balance=True)
        if again:
            set_state(chat_id, DialogueState.PROMO_CODE)
            return reply(chat_id, f"{text}\n{texts.promo_code_again()}")
        clear_state(chat_id)
        reply(chat_id, text, keyboards.main_menu())

    def _redeemed(self, customer, code: str, *, with_balance: bool) -> tuple[str, bool]:
        """(what to tell, whether to ask for the code again)."""
        try:
            redemption = promotion_services.redeem_promo_code(customer=customer, code=code)
        except PromoCodeNotValid as exc:
            return str(exc), True
        except PromoCodeError as exc:
            return str(exc), False
        # An amount code credited the wallet just now: the balance it made (/start shows its own).
        balance = billing_selectors.get_balance(customer) if with_balance and redemption.amount else None
        return texts.promo_redeemed(redemption.amount, redemption.percent, balance), False
