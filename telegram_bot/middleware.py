"""Runs before every handler: refuse group chats, find or create the customer, limit floods,
refuse the blocked.

The bot works in private chats only. An update from any other chat (a message, or a button of a
message there) writes nothing: no customer, no dialogue, no job, no payment. A pressed button
is answered with the sentence that says so; a message gets it at most once per group per
window, so a busy group (or adding the bot to one) is never spammed. A pre-checkout query has
no chat: it can only come from an invoice, and the bot sends invoices only in private chats
(``_pay`` is reached from private chats only), so it passes.

Two windows per customer (``ratelimit``). Every update but a payment counts against the flood
window (``BOT_FLOOD_LIMIT`` per ``BOT_RATE_WINDOW``); generation requests and payments started
count against the request window (``BOT_RATE_LIMIT``), checked by ``allow_request`` where they
are made, so the steps of a dialogue cost nothing there. A refusal names the seconds until the
window frees a slot. A refused button press is always answered with that text (a callback
answer is a small popup, not a chat message). A refused message gets the text once per refusal
period (from the refusal to the moment it names, which it says it will not process messages
before): every later refused message falls inside a period the customer was told about, and a
new period starts only after an update was let through, so refusal texts never outnumber the
updates processed and a flood is not amplified. Payments are never rate-limited (Telegram
waits for the pre-checkout answer; a successful payment has taken the Stars already). A blocked
customer's pre-checkout is refused (no money moves), but their successful payment is still
recorded and credited (the money is theirs; staff can refund it) while they stay blocked.

The customer's language is active for the handler and deactivated afterwards.
"""
from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import translation
from telebot.handler_backends import BaseMiddleware, CancelUpdate

from billing.models import Customer
from billing.services import get_or_create_customer
from genbot import counters
from telegram_bot import outbox, texts
from telegram_bot.ratelimit import SlidingWindowLimiter, Verdict, shared_limiter

logger = logging.getLogger(__name__)


# A customer read is reused for a few seconds: a person sends several updates in a row, and a
# block or a language change made elsewhere may take this long to be seen (``forget_customer``
# makes this process see its own changes at once).
CUSTOMER_CACHE_SECONDS = 3.0
_customers: dict[int, tuple[float, Customer]] = {}
_customers_lock = threading.Lock()


def forget_customer(telegram_id: int) -> None:
    with _customers_lock:
        _customers.pop(telegram_id, None)


def find_customer(user) -> Customer:
    """The customer behind a Telegram user; the language comes from Telegram only at creation."""
    now = time.monotonic()
    with _customers_lock:
        cached = _customers.get(user.id)
    profile = {"username": user.username or "", "first_name": user.first_name or "", "last_name": user.last_name or ""}
    if cached is not None and cached[0] > now:
        customer = cached[1]
    else:
        customer = Customer.objects.filter(telegram_id=user.id).first()
        if customer is None:
            with outbox.serialised_writes():
                customer = get_or_create_customer(telegram_id=user.id, language=user.language_code or "ru", **profile)
    # A changed profile is saved; a customer marked as having blocked the bot is writing again,
    # so they unblocked it (get_or_create_customer clears the mark).
    if customer.bot_blocked_at is not None or any(profile[k] and getattr(customer, k) != profile[k] for k in profile):
        with outbox.serialised_writes():
            customer = get_or_create_customer(telegram_id=user.id, **profile)
    with _customers_lock:
        if len(_customers) > 50_000:
            _customers.clear()
        _customers[user.id] = (now + CUSTOMER_CACHE_SECONDS, customer)
    return customer


def _is_payment(update) -> bool:
    return _is_successful_payment(update) or hasattr(update, "invoice_payload")


def _is_successful_payment(update) -> bool:
    return getattr(update, "successful_payment", None) is not None


def _is_callback(update) -> bool:
    return hasattr(update, "data") and hasattr(update, "chat_instance")


class CustomerMiddleware(BaseMiddleware):
    update_types = ["message", "callback_query", "pre_checkout_query"]

    def __init__(self, bot, limiter: SlidingWindowLimiter | None = None):
        super().__init__()
        self.bot = bot
        self.limiter = limiter or shared_limiter()

    def pre_process(self, update, data):
        _refresh_connections()
        user = getattr(update, "from_user", None)
        if user is None or user.is_bot:
            return CancelUpdate()
        # First, before anything writes: nothing of a group is stored or started.
        chat = _chat(update)
        if chat is not None and chat.type != "private":
            self._refuse_group(update, chat, user)
            return self._cancel()
        customer = find_customer(user)
        translation.activate(customer.language)
        data["customer"] = customer
        if not _is_payment(update):
            verdict = self.limiter.hit(f"{user.id}:updates", limit=settings.BOT_FLOOD_LIMIT)
            if not verdict.allowed:
                self._refuse_rate(update, verdict, texts.flood_limited(verdict.retry_seconds))
                return self._cancel()
        # After the flood window, so that a blocked account cannot make the bot answer a flood;
        # a successful payment goes on to be credited (Telegram has taken the Stars already).
        if customer.is_blocked and not _is_successful_payment(update):
            self._refuse(update, texts.blocked())
            return self._cancel()
        return None

    def post_process(self, update, data, exception):
        try:
            if exception is not None:
                logger.error("handler failed for %s", type(update).__name__, exc_info=exception)
                chat_id = _chat_id(update)
                if chat_id is not None:
                    outbox.enqueue_text(chat_id, texts.internal_error())
        finally:
            translation.deactivate()

    def _cancel(self) -> CancelUpdate:
        translation.deactivate()
        return CancelUpdate()

    def _refuse(self, update, text: str) -> None:
        if hasattr(update, "invoice_payload"):  # a pre_checkout_query
            self.bot.answer_pre_checkout_query(update.id, ok=False, error_message=text)
            return
        if _is_callback(update):
            self.bot.answer_callback_query(update.id, text=text, show_alert=True)
            return
        chat_id = _chat_id(update)
        if chat_id is not None:
            outbox.enqueue_text(chat_id, text)

    def _refuse_rate(self, update, verdict: Verdict, text: str) -> None:
        refuse_rate(self.bot, verdict, text, query=update if _is_callback(update) else None, chat_id=_chat_id(update))

    def _refuse_group(self, update, chat, user) -> None:
        """The one sentence, to the presser of a button, or to the group once per window."""
        callback = _is_callback(update)
        if not callback and not self.limiter.once(f"group:{chat.id}"):
            return
        with translation.override(_known_language(user)):
            text = texts.private_chat_only(bot_username(self.bot))
        if callback:
            self.bot.answer_callback_query(update.id, text=text, show_alert=True)
        else:
            outbox.enqueue_text(chat.id, text)


def bot_username(bot) -> str:
    """The bot's @username, "" when Telegram cannot say. telebot asks getMe once per bot object
    (``TeleBot.user`` keeps the answer) and the bot is built once per process, so this is one
    Bot API call per process; a failed call is asked again next time."""
    try:
        return bot.user.username or ""
    except Exception:  # noqa: BLE001 - the callers manage without the name (getMe failed)
        logger.warning("getMe failed: the bot's username is unknown for now", exc_info=True)
        return ""


def refuse_rate(bot, verdict: Verdict, text: str, *, query=None, chat_id: int | None = None) -> None:
    """Answer a rate-limited update and count it: a button press always (a popup with ``text``),
    a message or a pre-answered press once per refusal period (see the module's docstring)."""
    counters.count("rate_limit_refusals")
    if query is not None:
        bot.answer_callback_query(query.id, text=text, show_alert=verdict.first_refusal)
    elif verdict.first_refusal and chat_id is not None:
        outbox.enqueue_text(chat_id, text)


def allow_request(bot, customer: Customer, *, query=None, chat_id: int | None = None) -> bool:
    """Count a generation request or a payment started against ``BOT_RATE_LIMIT``; when refused,
    answer (``query``: the pressed button, not answered yet; else a text to ``chat_id``)."""
    verdict = shared_limiter().hit(f"{customer.telegram_id}:requests", limit=settings.BOT_RATE_LIMIT)
    if not verdict.allowed:
        refuse_rate(bot, verdict, texts.requests_limited(verdict.retry_seconds), query=query, chat_id=chat_id)
    return verdict.allowed


def _known_language(user) -> str:
    """The customer's language if they exist, else Telegram's (for a reply that creates nobody)."""
    with _customers_lock:
        cached = _customers.get(user.id)
    if cached is not None:
        return cached[1].language
    language = Customer.objects.filter(telegram_id=user.id).values_list("language", flat=True).first()
    if language:
        return language
    try:
        return translation.get_supported_language_variant(user.language_code or settings.LANGUAGE_CODE)
    except LookupError:
        return settings.LANGUAGE_CODE


def _refresh_connections() -> None:
    """Drop broken or expired connections, as Django does around a request. An SQLite file never
    goes stale, and reopening it per update (CONN_MAX_AGE 0) would cost more than the handler."""
    if connection.vendor != "sqlite":
        close_old_connections()


def _chat(update):
    """The chat of a message, or of the message whose button was pressed; None for a pre-checkout
    query (and a button of an inline message)."""
    chat = getattr(update, "chat", None)
    if chat is None and getattr(update, "message", None) is not None:
        chat = update.message.chat
    return chat


def _chat_id(update) -> int | None:
    chat = _chat(update)
    if chat is not None:
        return chat.id
    user = getattr(update, "from_user", None)
    return user.id if user is not None else None
