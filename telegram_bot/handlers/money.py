"""Money: the balance, top-ups (YooKassa and Telegram Stars, with Stars' pre-checkout and
successful payment) and /history of what moved.

The amount buttons are promotions' top-up packages, each with its bonus; every top-up starts
through ``promotions.services.start_topup``, which keeps that bonus in the payment.

A payment started is counted against the request limit (``allow_request``); the payment's
outcome is told by the ``payment_succeeded`` receiver, once, whatever the provider.
"""
from __future__ import annotations

import logging
import math

from django.conf import settings

from billing import selectors as billing_selectors
from billing.money import parse_amount
from genbot.errors import GenbotError
from payments import services as payment_services
from payments.exceptions import PaymentError
from promotions import selectors as promotion_selectors
from promotions import services as promotion_services
from telegram_bot import keyboards, outbox, results, texts
from telegram_bot import selectors as bot_selectors
from telegram_bot.handlers.base import HandlerBase, reply
from telegram_bot.messages import invoice_message
from telegram_bot.middleware import allow_request
from telegram_bot.models import DialogueState
from telegram_bot.services import clear_state, set_state

logger = logging.getLogger(__name__)


def topup_offers() -> list[tuple[int, int]]:
    """The top-up buttons: (kopecks, bonus percent) of the active packages staff set up; the
    plain TOPUP_PRESETS_KOPECKS when staff switched every package off."""
    packages = promotion_selectors.active_packages()
    if packages:
        return [(package.amount, package.bonus_percent) for package in packages]
    return [(amount, 0) for amount in settings.TOPUP_PRESETS_KOPECKS]


class MoneyHandlers(HandlerBase):
    def balance(self, message, data):
        self._balance(message.chat.id, data["customer"])

    def _balance(self, chat_id, customer):
        reply(chat_id, texts.balance(billing_selectors.get_balance(customer), billing_selectors.get_held(customer)),
              keyboards.topup_button())

    def history(self, message, data):
        self._history(message.chat.id, data["customer"])

    def _history(self, chat_id, customer, page: int = 0):
        history = bot_selectors.history_page(customer, page)
        kept = [entry.job for entry in history.entries if entry.job is not None and results.kept(entry.job)
                and entry.job.status == "completed"]
        reply(chat_id, texts.history(history), keyboards.history_pages(history, keyboards.resend_results(kept)))

    def topup(self, message, data):
        self._topup(message.chat.id, data["customer"])

    def _topup(self, chat_id, customer):
        clear_state(chat_id)
        reply(chat_id, texts.topup_choose(promotion_selectors.pending_promo_percent(customer)),
              keyboards.topup_amounts(topup_offers()))

    def _ask_topup_amount(self, chat_id):
        set_state(chat_id, DialogueState.TOPUP_AMOUNT)
        reply(chat_id, texts.topup_custom())

    def _topup_amount(self, chat_id: int, text: str):
        try:
            amount = payment_services.check_topup_amount(parse_amount(text))
        except GenbotError as exc:
            return reply(chat_id, str(exc))
        clear_state(chat_id)
        self._topup_methods(chat_id, amount)

    def _topup_methods(self, chat_id: int, amount: int):
        stars = math.ceil(amount / settings.STARS_RATE_KOPECKS)
        reply(chat_id, texts.topup_method(amount, promotion_selectors.package_bonus_percent(amount)),
              keyboards.topup_methods(amount, stars))

    def _pay(self, chat_id, customer, method, amount):
        if not allow_request(self.bot, customer, chat_id=chat_id):
            return None
        try:
            # Through promotions: the payment keeps the package bonus its button promised.
            if method == "yk":
                payment = promotion_services.start_topup(customer=customer, amount=amount, provider="yookassa")
                return reply(chat_id, texts.topup_yookassa(payment.amount), keyboards.pay_link(payment.confirmation_url, payment.amount))
            if method == "st":
                payment = promotion_services.start_topup(customer=customer, amount=amount, provider="stars")
                invoice = payment_services.build_stars_invoice(payment=payment)
                price = invoice.prices[0]
                outbox.enqueue(invoice_message(
                    chat_id, title=invoice.title, description=invoice.description, payload=invoice.payload,
                    currency=invoice.currency, amount=price["amount"], label=price["label"],
                ))
                return None
        except GenbotError as exc:
            return reply(chat_id, str(exc))
        reply(chat_id, texts.expired(), keyboards.main_menu())

    # --- Stars -------------------------------------------------------------------------------

    def pre_checkout(self, query, data):
        try:
            payment_services.validate_pre_checkout(
                payload=query.invoice_payload, currency=query.currency, total_amount=query.total_amount,
                telegram_user_id=query.from_user.id,
            )
        except PaymentError as exc:
            return self.bot.answer_pre_checkout_query(query.id, ok=False, error_message=str(exc))
        self.bot.answer_pre_checkout_query(query.id, ok=True)

    def successful_payment(self, message, data):
        paid = message.successful_payment
        try:
            payment_services.confirm_stars_payment(
                payload=paid.invoice_payload, currency=paid.currency, total_amount=paid.total_amount,
                telegram_payment_charge_id=paid.telegram_payment_charge_id, telegram_user_id=message.from_user.id,
            )
        except PaymentError:
            logger.exception("Stars payment %s not credited", paid.telegram_payment_charge_id)
            reply(message.chat.id, texts.paysupport(message.from_user.id))
        # The payment_succeeded receiver tells the customer (once, whatever the provider).
