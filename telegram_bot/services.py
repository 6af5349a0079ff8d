"""Writes the bot owns: the dialogue state of each chat (which question the bot is waiting on),
the mark on a customer who blocked the bot, the settings each customer chose for their next
order, and the photos of an album waiting for the rest of it."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from billing.models import Customer
from billing.services import mark_bot_blocked
from telegram_bot.models import AlbumPhoto, Conversation, DialogueState, OrderSettings
from telegram_bot.outbox import serialised_writes


def get_state(chat_id: int) -> Conversation:
    """The chat's dialogue, or an empty unsaved one."""
    return Conversation.objects.filter(chat_id=chat_id).first() or Conversation(chat_id=chat_id)


def set_state(chat_id: int, state: DialogueState, data: dict | None = None) -> None:
    Conversation.objects.update_or_create(chat_id=chat_id, defaults={"state": state, "data": data or {}})


def clear_state(chat_id: int) -> bool:
    """Forget the dialogue; True if there was one (a conditional UPDATE: one caller wins)."""
    return bool(
        Conversation.objects.filter(chat_id=chat_id).exclude(state=DialogueState.IDLE)
        .update(state=DialogueState.IDLE, data={})
    )


def claim_confirmed_draft(chat_id: int, *, quote: str, price: int) -> dict | None:
    """The job draft of quote ``quote`` at ``price`` kopecks, taken so that only one press wins it.

    None when the chat's current draft is another quote (an older button, a newer offer), shows
    another price, or was taken already. A double tap on "Confirm" must not start two paid jobs:
    the conditional UPDATE (``WHERE state = 'confirm' AND data.quote = quote``) lets exactly one
    caller clear the draft. Quote ids are random tokens, never reused, so a draft read with that
    id is the draft the UPDATE clears.
    """
    conversation = get_state(chat_id)
    draft = conversation.data if conversation.state == DialogueState.CONFIRM else None
    if not draft or draft.get("quote") != quote or draft.get("price") != price:
        return None
    claimed = Conversation.objects.filter(chat_id=chat_id, state=DialogueState.CONFIRM, data__quote=quote).update(
        state=DialogueState.IDLE, data={}
    )
    if not claimed:
        return None
    return draft


def replace_quoted_draft(chat_id: int, *, quote: str, draft: dict) -> bool:
    """Put ``draft`` (a new quote) in place of quote ``quote``, if that is still the chat's draft.

    For a quote shown again without the customer's doing (after a top-up): a conditional
    UPDATE, so whatever the customer did meanwhile (a new prompt, /cancel, the confirm button)
    wins over it.
    """
    return bool(
        Conversation.objects.filter(chat_id=chat_id, state=DialogueState.CONFIRM, data__quote=quote).update(
            data=draft, updated_at=timezone.now()
        )
    )


def mark_chats_blocked(*, chat_ids: Iterable[int]) -> int:
    """Telegram answered 403 to these chats: the people blocked the bot (or deleted their account).

    Marks their customers (``billing.services.mark_bot_blocked``: not a staff block; the mark
    goes when they write again) and returns how many were newly marked. For the delivery loop
    and broadcasts alike; call it from the thread (and transaction) that should own the writes.
    """
    customers = list(Customer.objects.filter(telegram_id__in=list(chat_ids), bot_blocked_at__isnull=True))
    with serialised_writes():
        for customer in customers:
            mark_bot_blocked(customer=customer)
    return len(customers)


def remembered_settings(customer, group: str) -> tuple[str, dict]:
    """(offer key, options) the customer last chose for ``group``; ("", {}) before any choice."""
    row = OrderSettings.objects.filter(customer_id=customer.pk, group=group).values_list("model", "options").first()
    return (row[0], dict(row[1] or {})) if row else ("", {})


def remember_settings(*, customer, group: str, model: str, options: dict) -> None:
    """Keep ``model`` and ``options`` as the customer's choice for ``group`` (one row per group)."""
    with serialised_writes():
        OrderSettings.objects.update_or_create(
            customer_id=customer.pk, group=group, defaults={"model": model, "options": options}
        )


# An album's photos left behind (the bot stopped before quoting it) are forgotten after this.
ALBUM_LEFTOVER = timedelta(hours=1)


def add_album_photo(*, chat_id: int, media_group_id: str, message_id: int, file_id: str, caption: str) -> None:
    """Keep one photo of an album until the album is complete (``take_album``); a repeat is ignored."""
    with serialised_writes(), transaction.atomic():
        AlbumPhoto.objects.filter(chat_id=chat_id, received_at__lt=timezone.now() - ALBUM_LEFTOVER).delete()
        AlbumPhoto.objects.get_or_create(
            chat_id=chat_id, media_group_id=media_group_id, message_id=message_id,
            defaults={"file_id": file_id, "caption": caption},
        )


def take_album(*, chat_id: int, media_group_id: str, quiet_for: float) -> list[AlbumPhoto] | None:
    """The album's photos, in the order sent, if none came in the last ``quiet_for`` seconds; None if
    one did (a later check takes them) or another caller took them.

    The DELETE decides: the caller that deletes every photo it read has the album, so each album
    is quoted once however many checks run at the same moment, in however many processes.
    """
    with serialised_writes(), transaction.atomic():
        photos = list(AlbumPhoto.objects.filter(chat_id=chat_id, media_group_id=media_group_id))
        if not photos or max(p.received_at for p in photos) > timezone.now() - timedelta(seconds=quiet_for):
            return None
        deleted, _by_model = AlbumPhoto.objects.filter(pk__in=[p.pk for p in photos]).delete()
        if deleted != len(photos):
            transaction.set_rollback(True)
            return None
    return photos
