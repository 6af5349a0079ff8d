"""The customer's own settings and the bot's manners: /start (its deep links and welcome bonus
are ``bonuses``'), /help, /lang, /paysupport, and the
answers to what the bot does not handle (an unknown command, a sticker, other content).

Not named ``settings``: a submodule of that name would stand for ``django.conf.settings`` in
this package's namespace.
"""
from __future__ import annotations

from django.utils import translation

from billing import selectors as billing_selectors
from billing.services import get_or_create_customer
from telegram_bot import keyboards, texts
from telegram_bot.handlers.base import HandlerBase, command_argument, reply
from telegram_bot.middleware import forget_customer
from telegram_bot.services import clear_state


class SettingsHandlers(HandlerBase):
    def start(self, message, data):
        customer = data["customer"]
        clear_state(message.chat.id)
        news = self._start_news(customer, command_argument(message.text))  # a deep link, the welcome bonus
        name = customer.first_name or customer.username
        reply(message.chat.id, texts.start(name, billing_selectors.get_balance(customer), news), keyboards.main_menu())

    def help(self, message, data):
        self._help(message.chat.id)

    def _help(self, chat_id):
        reply(chat_id, texts.help_text(), keyboards.main_menu())

    def lang(self, message, data):
        self._choose_language(message.chat.id)

    def _choose_language(self, chat_id):
        reply(chat_id, texts.choose_language(), keyboards.languages())

    def _set_language(self, chat_id, customer, code: str):
        get_or_create_customer(telegram_id=customer.telegram_id, language=code)
        forget_customer(customer.telegram_id)
        translation.activate(code)
        reply(chat_id, texts.language_set(), keyboards.main_menu())

    def paysupport(self, message, data):
        reply(message.chat.id, texts.paysupport(data["customer"].telegram_id))

    def unknown_command(self, message, data):
        reply(message.chat.id, texts.unknown_command(message.text.split()[0]))

    def sticker(self, message, data):
        reply(message.chat.id, texts.sticker(), keyboards.main_menu())

    def other(self, message, data):
        reply(message.chat.id, texts.unsupported_content())
