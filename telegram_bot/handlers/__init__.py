"""Update handlers: parse the update, call one service, render a text from ``texts``.

By topic: ``money`` (balance, top-ups, Stars, history), ``bonuses`` (/start's deep links and the
welcome bonus, /invite, /promo), ``jobs`` (pictures, edits, videos,
albums, quotes, running jobs), ``order_settings`` (the model and options, remembered),
``results`` (the buttons under a result) and ``customer_settings`` (start, help, language,
support, what the bot does not handle). ``Handlers`` joins them and routes what belongs to no one topic: a text (by the
dialogue's state), a pressed button (by its ``callbacks`` kind) and a menu item.

Replies go through the durable outbox (``telegram_bot.outbox``), so a handler never waits on
Telegram's flood limits; callback and pre-checkout answers are immediate Bot API calls because
Telegram waits for them. The middleware has already found the customer (``data["customer"]``),
activated their language and applied the flood limit; a generation request or a payment started
is counted against the request limit by ``allow_request`` where it is made.
"""
from __future__ import annotations

from django.conf import settings

from jobs.models import JobKind
from telegram_bot import callbacks, keyboards, texts
from telegram_bot.handlers.base import reply
from telegram_bot.handlers.bonuses import BonusHandlers
from telegram_bot.handlers.jobs import JobHandlers
from telegram_bot.handlers.money import MoneyHandlers
from telegram_bot.handlers.customer_settings import SettingsHandlers
from telegram_bot.handlers.order_settings import OrderSettingsHandlers
from telegram_bot.handlers.results import ResultHandlers
from telegram_bot.models import DialogueState
from telegram_bot.services import get_state

COMMANDS = ("start", "balance", "topup", "picture", "edit", "video", "settings", "jobs", "history", "cancel", "help",
            "lang", "paysupport", "promo", "invite")
OTHER_CONTENT = ["audio", "video", "voice", "video_note", "location", "contact", "venue", "animation", "poll", "dice", "game"]


class Handlers(SettingsHandlers, MoneyHandlers, JobHandlers, OrderSettingsHandlers, ResultHandlers, BonusHandlers):
    def text(self, message, data):
        """A text answers the question the dialogue asked; outside a dialogue (or over a quote
        shown) it is a picture's description, quoted with the remembered settings."""
        chat_id, text, customer = message.chat.id, message.text or "", data["customer"]
        if len(text) > settings.JOB_MAX_PROMPT_LENGTH:
            return reply(chat_id, texts.text_too_long(settings.JOB_MAX_PROMPT_LENGTH))
        conversation = get_state(chat_id)
        state = conversation.state
        options = {k: v for k, v in conversation.data.items() if k != "inputs"}
        inputs = conversation.data.get("inputs") or []
        if state == DialogueState.VIDEO_PROMPT:
            kind = JobKind.VIDEO_IMAGE if inputs else JobKind.VIDEO_TEXT
            return self._offer_remembered(chat_id, customer, kind=kind, prompt=text, options=options, inputs=inputs)
        if state == DialogueState.TOPUP_AMOUNT:
            return self._topup_amount(chat_id, text)
        if state == DialogueState.PROMO_CODE:
            return self._redeem_promo(chat_id, customer, text)
        if state == DialogueState.EDIT_PHOTO:
            if not inputs:
                return reply(chat_id, texts.ask_edit_photo())
            return self._offer_remembered(chat_id, customer, kind=JobKind.IMAGE_EDIT, prompt=text, inputs=inputs)
        if state == DialogueState.VIDEO_OPTIONS:
            return reply(chat_id, texts.hint(), keyboards.main_menu())
        self._offer_remembered(chat_id, customer, kind=JobKind.IMAGE, prompt=text)

    def callback(self, query, data):
        customer = data["customer"]
        if query.message is None:
            return self.bot.answer_callback_query(query.id, text=texts.expired())
        chat_id = query.message.chat.id
        pressed = callbacks.parse(query.data)
        if isinstance(pressed, callbacks.Confirm):
            return self._confirm(query, customer, pressed)
        if isinstance(pressed, callbacks.CancelJob):
            return self._cancel_job(query, customer, pressed.job_id)
        if isinstance(pressed, callbacks.Expired):
            return self._expired(query)
        if isinstance(pressed, callbacks.ChooseModel | callbacks.ChooseOption):
            return self._change_setting(query, customer, pressed)
        self.bot.answer_callback_query(query.id)
        match pressed:
            case callbacks.CancelDialogue():
                return self._drop_dialogue(chat_id)
            case callbacks.Menu(item=item):
                return self._menu(chat_id, customer, item)
            case callbacks.TopupAmount(amount=None):
                return self._ask_topup_amount(chat_id)
            case callbacks.TopupAmount(amount=amount):
                return self._topup_methods(chat_id, amount)
            case callbacks.Pay(method=method, amount=amount):
                return self._pay(chat_id, customer, method, amount)
            case callbacks.VideoDuration() | callbacks.VideoAspect() | callbacks.VideoMode():
                return self._video_option(chat_id, customer, pressed)
            case callbacks.ResultAction():
                return self._result_action(chat_id, customer, pressed)
            case callbacks.OpenSettings(group=group):
                return self._open_settings(chat_id, customer, group)
            case callbacks.SettingsDone(group=group):
                return self._settings_done(query, customer, group)
            case callbacks.HistoryPage(page=page):
                return self._history(chat_id, customer, page)
            case callbacks.Language(code=code):
                return self._set_language(chat_id, customer, code)
        reply(chat_id, texts.expired(), keyboards.main_menu())

    def _menu(self, chat_id, customer, item):
        match item:
            case "picture":
                return self._ask_picture_prompt(chat_id)
            case "edit":
                return self._ask_edit_photo(chat_id)
            case "video":
                return self._video(chat_id, customer)
            case "settings":
                return self._choose_settings_group(chat_id)
            case "topup":
                return self._topup(chat_id, customer)
            case "balance":
                return self._balance(chat_id, customer)
            case "jobs":
                return self._jobs(chat_id, customer)
            case "history":
                return self._history(chat_id, customer)
            case "lang":
                return self._choose_language(chat_id)
        self._help(chat_id)


def register(bot) -> Handlers:
    h = Handlers(bot)
    for command in COMMANDS:
        bot.register_message_handler(getattr(h, command), commands=[command])
    bot.register_message_handler(h.successful_payment, content_types=["successful_payment"])
    bot.register_message_handler(h.unknown_command, content_types=["text"], func=lambda m: (m.text or "").startswith("/"))
    bot.register_message_handler(h.text, content_types=["text"])
    bot.register_message_handler(h.photo, content_types=["photo"])
    bot.register_message_handler(h.document, content_types=["document"])
    bot.register_message_handler(h.sticker, content_types=["sticker"])
    bot.register_message_handler(h.other, content_types=OTHER_CONTENT)
    bot.register_callback_query_handler(h.callback, func=lambda q: True)
    bot.register_pre_checkout_query_handler(h.pre_checkout, func=lambda q: True)
    return h
