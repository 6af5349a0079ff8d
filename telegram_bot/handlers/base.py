"""What every topic's handlers share: the reply, the command's argument, the expired button."""
from __future__ import annotations

from telegram_bot import outbox, quotes, texts


def reply(chat_id: int, text: str, markup: dict | None = None):
    return outbox.enqueue_text(chat_id, text, reply_markup=markup)


def command_argument(text: str | None) -> str:
    """What follows the command (``/picture a cat`` gives "a cat")."""
    parts = (text or "").split(maxsplit=1)
    return parts[1].strip() if len(parts) > 1 else ""


class HandlerBase:
    """The bot the handlers answer through (callback and pre-checkout answers are immediate)."""

    def __init__(self, bot):
        self.bot = bot

    def _expired(self, query):
        """A button that can do nothing any more: say so, and take its keyboard off the message."""
        self.bot.answer_callback_query(query.id, text=texts.expired())
        quotes.remove_keyboard(query.message.chat.id, query.message.message_id)
