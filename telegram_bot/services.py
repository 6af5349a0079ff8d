"""Writes the bot owns: the dialogue state of each chat (which question the bot is waiting on)."""
from __future__ import annotations

from telegram_bot.models import Conversation


def get_state(chat_id: int) -> Conversation:
    """The chat's dialogue, or an empty unsaved one."""
    return Conversation.objects.filter(chat_id=chat_id).first() or Conversation(chat_id=chat_id)


def set_state(chat_id: int, state: str, data: dict | None = None) -> None:
    Conversation.objects.update_or_create(chat_id=chat_id, defaults={"state": state, "data": data or {}})


def clear_state(chat_id: int) -> bool:
    """Forget the dialogue; True if there was one (a conditional UPDATE: one caller wins)."""
    return bool(Conversation.objects.filter(chat_id=chat_id).exclude(state="").update(state="", data={}))


def claim_confirmed_draft(chat_id: int) -> dict | None:
    """The job draft awaiting confirmation, taken so that only one press wins it.

    A double tap on "Confirm" must not start two paid jobs: the conditional UPDATE lets exactly
    one caller clear the ``confirm`` state; the others get None.
    """
    conversation = get_state(chat_id)
    draft = conversation.data if conversation.state == "confirm" else None
    if not draft or not Conversation.objects.filter(chat_id=chat_id, state="confirm").update(state="", data={}):
        return None
    return draft
