"""The real bot (middleware + handlers) run synchronously on built updates, against the sandbox
for its immediate Bot API calls; what it writes to chats stays in the outbox, to be read."""
from __future__ import annotations

import itertools
import time
import uuid

import pytest
from telebot import types

from payments import services as payment_services
from payments.models import Payment
from telegram_bot import callbacks
from telegram_bot.models import OutboxMessage

_update_ids = itertools.count(1)
_message_ids = itertools.count(1)
BOT = {"id": 7000000001, "is_bot": True, "first_name": "genbot (sandbox)", "username": "genbot_sandbox_bot"}


class Person:
    """Someone writing to the bot in a chat (their private chat unless ``chat`` is given)."""

    def __init__(self, bot, user_id: int, *, language: str = "en", chat: dict | None = None):
        self.bot = bot
        self.user = {"id": user_id, "is_bot": False, "first_name": "Ann", "language_code": language}
        self.chat = chat or {"id": user_id, "type": "private", "first_name": "Ann"}

    def _process(self, kind: str, payload: dict) -> None:
        self.bot.process_new_updates([types.Update.de_json({"update_id": next(_update_ids), kind: payload})])

    def _message(self, **fields) -> dict:
        return {"message_id": next(_message_ids), "from": self.user, "chat": self.chat, "date": int(time.time()), **fields}

    def send(self, text: str) -> None:
        fields = {"text": text}
        if text.startswith("/"):
            fields["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        self._process("message", self._message(**fields))

    def press(self, data: str) -> str:
        """Press a button with ``data`` on a bot message; returns the callback query's id."""
        query_id = uuid.uuid4().hex[:16]
        message = {"message_id": next(_message_ids), "from": BOT, "chat": self.chat, "date": int(time.time()), "text": "…"}
        self._process("callback_query", {"id": query_id, "from": self.user, "chat_instance": "1", "data": data, "message": message})
        return query_id

    def confirm(self) -> str:
        """Press the confirm button of the newest quote the bot wrote to this chat."""
        for row in OutboxMessage.objects.filter(chat_id=self.chat["id"], method="sendMessage").order_by("-id"):
            for line in (row.params.get("reply_markup") or {}).get("inline_keyboard", []):
                for button in line:
                    if isinstance(callbacks.parse(button.get("callback_data")), callbacks.Confirm):
                        return self.press(button["callback_data"])
        raise AssertionError("no quote with a confirm button in this chat")

    def pays(self, payment: Payment, charge: str) -> None:
        invoice = payment_services.build_stars_invoice(payment=payment)
        self._process("message", self._message(successful_payment={
            "currency": "XTR", "total_amount": invoice.prices[0]["amount"], "invoice_payload": invoice.payload,
            "telegram_payment_charge_id": charge, "provider_payment_charge_id": "",
        }))

    def texts(self) -> list[str]:
        """What the bot wrote to this chat (the outbox: nothing is delivered in these tests)."""
        return [row.params.get("text", "") for row in OutboxMessage.objects.filter(chat_id=self.chat["id"]).order_by("id")]


@pytest.fixture
def direct_bot(sandbox, settings, monkeypatch, transactional_db):
    """The bot; the database is transactional, as the middleware closes a connection left
    inside a transaction (PostgreSQL), which the plain ``db`` fixture's test is."""
    from telegram_bot.bot import build_bot

    settings.AI_PROVIDER = "fake"
    monkeypatch.setattr("jobs.queueing.enqueue_job", lambda job_id, kind: "test")
    bot = build_bot(threaded=False)
    bot.answers = sandbox.state.callback_answers
    return bot
