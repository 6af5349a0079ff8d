"""Runs before every handler: find or create the customer, refuse the blocked, rate-limit.

A refused update is answered once (politely) and processes nothing more. The customer's
language is active for the handler and deactivated afterwards; handler latency is recorded
(the benchmark reads ``latencies``).
"""
from __future__ import annotations

import logging
import threading
import time

from django.db import close_old_connections, connection
from django.utils import translation
from telebot.handler_backends import BaseMiddleware, CancelUpdate

from billing.models import Customer
from billing.services import get_or_create_customer
from genbot import counters
from telegram_bot import outbox, texts
from telegram_bot.ratelimit import SlidingWindowLimiter

logger = logging.getLogger(__name__)


class HandlerLatencies:
    """Handler durations in seconds (a bounded list, for the benchmark and logs)."""

    def __init__(self, limit: int = 100_000):
        self.limit = limit
        self._lock = threading.Lock()
        self.values: list[float] = []

    def add(self, seconds: float) -> None:
        with self._lock:
            if len(self.values) < self.limit:
                self.values.append(seconds)

    def reset(self) -> None:
        with self._lock:
            self.values.clear()


latencies = HandlerLatencies()


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
    return getattr(update, "successful_payment", None) is not None or hasattr(update, "invoice_payload")


class CustomerMiddleware(BaseMiddleware):
    update_types = ["message", "callback_query", "pre_checkout_query"]

    def __init__(self, bot, limiter: SlidingWindowLimiter | None = None):
        super().__init__()
        self.bot = bot
        self.limiter = limiter or SlidingWindowLimiter()

    def pre_process(self, update, data):
        data["started"] = time.perf_counter()
        _refresh_connections()
        user = getattr(update, "from_user", None)
        if user is None or user.is_bot:
            return CancelUpdate()
        customer = find_customer(user)
        translation.activate(customer.language)
        data["customer"] = customer
        # Payments are never rate-limited: Telegram waits for the pre-checkout answer.
        if not _is_payment(update):
            # Button presses come in quick runs while a person walks through a menu: they have
            # their own window, three times as wide, so a top-up and an order fit in a minute.
            if hasattr(update, "data"):
                verdict = self.limiter.hit(f"{user.id}:buttons", limit=self.limiter.limit * 3)
            else:
                verdict = self.limiter.hit(str(user.id))
            if not verdict.allowed:
                counters.count("rate_limit_refusals")
                if verdict.first_refusal:
                    self._refuse(update, texts.rate_limited())
                elif hasattr(update, "data"):
                    self.bot.answer_callback_query(update.id)
                return self._cancel()
        # After the rate limit, so that a blocked account cannot make the bot answer a flood.
        if customer.is_blocked:
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
            started = data.get("started")
            if started is not None:
                latencies.add(time.perf_counter() - started)
            translation.deactivate()

    def _cancel(self) -> CancelUpdate:
        translation.deactivate()
        return CancelUpdate()

    def _refuse(self, update, text: str) -> None:
        if hasattr(update, "invoice_payload"):  # a pre_checkout_query
            self.bot.answer_pre_checkout_query(update.id, ok=False, error_message=text)
            return
        if hasattr(update, "data"):  # a callback_query
            self.bot.answer_callback_query(update.id, text=text, show_alert=True)
            return
        chat_id = _chat_id(update)
        if chat_id is not None:
            outbox.enqueue_text(chat_id, text)


def _refresh_connections() -> None:
    """Drop broken or expired connections, as Django does around a request. An SQLite file never
    goes stale, and reopening it per update (CONN_MAX_AGE 0) would cost more than the handler."""
    if connection.vendor != "sqlite":
        close_old_connections()


def _chat_id(update) -> int | None:
    chat = getattr(update, "chat", None)
    if chat is None and getattr(update, "message", None) is not None:
        chat = update.message.chat
    if chat is not None:
        return chat.id
    user = getattr(update, "from_user", None)
    return user.id if user is not None else None
