"""Outgoing messages, built but not written: one ``OutboxMessage`` per Bot API call to make.

Receivers and handlers build them here and hand them to ``telegram_bot.outbox`` (``enqueue``,
or several at once ``enqueue_all``), which writes them; ``telegram_bot.delivery`` sends them.
"""
from __future__ import annotations

from telegram_bot.models import OutboxMessage

MEDIA_FIELDS = {"sendPhoto": "photo", "sendVideo": "video", "sendDocument": "document"}


def message(
    *, chat_id: int, method: str, params: dict, file_name: str = "", edit_of: OutboxMessage | None = None,
    topic: str = "",
) -> OutboxMessage:
    """One Bot API call to make, not written yet: for ``outbox.enqueue`` or, several at once, ``outbox.enqueue_all``."""
    params = {k: v for k, v in params.items() if v is not None}
    params["chat_id"] = chat_id
    return OutboxMessage(chat_id=chat_id, method=method, params=params, file_name=file_name, edit_of=edit_of, topic=topic)


def text_message(chat_id: int, text: str, *, reply_markup: dict | None = None, topic: str = "") -> OutboxMessage:
    return message(chat_id=chat_id, method="sendMessage", params={"text": text, "reply_markup": reply_markup}, topic=topic)


def edit_message(of: OutboxMessage, text: str, *, reply_markup: dict | None = None) -> OutboxMessage:
    """An edit of the message ``of`` sent (or will send)."""
    return message(chat_id=of.chat_id, method="editMessageText", params={"text": text, "reply_markup": reply_markup}, edit_of=of)


def edit_sent_message(chat_id: int, message_id: int, text: str, *, reply_markup: dict | None = None) -> OutboxMessage:
    """An edit of a message already on screen (one whose button was just pressed)."""
    params = {"message_id": message_id, "text": text, "reply_markup": reply_markup}
    return message(chat_id=chat_id, method="editMessageText", params=params)


def remove_keyboard_message(chat_id: int, *, of: OutboxMessage | None = None, message_id: int | None = None) -> OutboxMessage:
    """Take the inline keyboard off a message: the one ``of`` sent (or will send), or ``message_id``.

    An empty keyboard rather than none: Telegram removes the markup either way, and the call
    says what it does. Doing it twice is harmless (Telegram's "not modified" counts as sent).
    """
    if (of is None) == (message_id is None):
        raise ValueError("give the outbox row or the message id, one of them")
    params = {"reply_markup": {"inline_keyboard": []}, "message_id": message_id}
    return message(chat_id=chat_id, method="editMessageReplyMarkup", params=params, edit_of=of)


def media_message(chat_id: int, method: str, file_name: str, *, caption: str = "", reply_markup: dict | None = None,
                  attributes: dict | None = None) -> OutboxMessage:
    """``attributes``: more parameters of the method (a video's width, height and duration)."""
    if method not in MEDIA_FIELDS:
        raise ValueError(f"not a media method: {method}")
    params = {**(attributes or {}), "caption": caption or None, "reply_markup": reply_markup}
    return message(chat_id=chat_id, method=method, params=params, file_name=file_name)


def invoice_message(chat_id: int, *, title: str, description: str, payload: str, currency: str, amount: int,
                    label: str) -> OutboxMessage:
    """A Telegram Stars invoice (no provider token: Stars need none)."""
    return message(
        chat_id=chat_id,
        method="sendInvoice",
        params={
            "title": title, "description": description, "payload": payload, "currency": currency,
            "prices": [{"label": label, "amount": amount}], "provider_token": "",
        },
    )
