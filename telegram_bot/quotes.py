"""Quotes: the price the bot shows for a job draft, and the one button that may start it.

Every time the bot shows a price it makes a new quote: the draft is saved in the chat's
``Conversation`` (state ``confirm``) under a fresh random quote id, and the confirm button
carries that id and the price (``callbacks.Confirm``). ``services.claim_confirmed_draft`` only
hands the draft to a press of that very button, so an older button (a picture quoted before
a video) can never start, or pay for, a newer draft. The id is a random token rather than a
counter because ``Conversation.data`` is wiped whenever the dialogue moves on: a counter
would start again and could give a later quote an old button's id.

The quote message is an outbox row with the topic ``quote:<chat>:<quote>``; while its topic
says so, its keyboard is still on screen. When a quote is used, superseded or dropped, the
row's topic is retired to ``quote-done:...`` and an ``editMessageReplyMarkup`` removes the
keyboard, both in one transaction (one writer wins the rename, so the removal is queued once).

A quote above the balance shows a top-up button for the missing amount instead of a confirm
button and marks the draft ``awaiting_topup``; when that customer's payment succeeds,
``resume_after_topup`` quotes the draft again (prices may have moved) and shows it with a
fresh button, so the order resumes with one tap and never starts without one.
"""
from __future__ import annotations

import math
import secrets

from django.conf import settings
from django.db import transaction

from jobs import catalog
from jobs.models import JobKind
from telegram_bot import keyboards, offers, outbox, texts
from telegram_bot.messages import remove_keyboard_message
from telegram_bot.models import DialogueState, OutboxMessage, OutboxStatus
from telegram_bot.services import get_state, replace_quoted_draft, set_state



def new_quote_id() -> str:
    """8 URL-safe characters (48 random bits): unguessable and never repeated in practice."""
    return secrets.token_urlsafe(6)


def topic(chat_id: int, quote: str) -> str:
    return f"quote:{chat_id}:{quote}"


def topup_covering(price: int, balance: int) -> int:
    """The top-up that makes ``balance`` cover ``price``: the missing amount in whole roubles,
    and at least the smallest top-up allowed."""
    missing = math.ceil(max(0, price - balance) / 100) * 100
    return max(missing, settings.TOPUP_MIN_KOPECKS)


def make_draft(*, kind: str, prompt: str, model: str = "", options: dict | None = None, inputs=()) -> dict:
    """A job draft at today's price (without a quote id yet).

    ``model`` and ``options`` are fitted to the catalogue (``offers.fit``): a model gone from it
    gives way to the kind's default, an option the model does not take is dropped. ``inputs``:
    the pictures the job works from, each ``{"file_id": ...}`` (a photo the customer sent) or
    ``{"stored": ...}`` (a storage name of the customer's own job, e.g. a result to edit).
    """
    model, options = offers.fit(kind, model, options or {})
    price = offers.price(kind, model, options)
    return {"kind": kind, "prompt": prompt, "model": model, "options": options, "inputs": list(inputs), "price": price}


def draft_inputs(draft: dict) -> list[dict]:
    """The draft's input pictures (a draft saved before several inputs had ``file_id``)."""
    return list(draft.get("inputs") or ([{"file_id": draft["file_id"]}] if draft.get("file_id") else []))


def requote(draft: dict, *, model: str | None = None, options: dict | None = None) -> dict:
    """The same order as a saved draft, at today's price (a new draft, without a quote id yet);
    with ``model`` and ``options``, those settings instead of the draft's."""
    return make_draft(
        kind=draft["kind"], prompt=draft["prompt"], model=draft.get("model", "") if model is None else model,
        options=draft.get("options") if options is None else options, inputs=draft_inputs(draft),
    )


def show(chat_id: int, draft: dict, balance: int, *, replacing: str = "") -> dict | None:
    """Save ``draft`` as the chat's new quote, take the keyboards off the ones shown before, show it.

    With ``replacing`` (a quote id) only if that quote is still the chat's draft; None if not.
    Returns the saved draft. One transaction: the draft, the retired keyboards and the new
    message commit together.
    """
    quote = new_quote_id()
    short = draft["price"] > balance
    draft = {**draft, "quote": quote, "awaiting_topup": short}
    if short:
        topup = topup_covering(draft["price"], balance)
        markup = keyboards.topup_to_confirm(topup, group=offers.group_of(draft["kind"]))
    else:
        topup, markup = 0, keyboards.confirm(quote, draft["price"], group=offers.group_of(draft["kind"]))
    text = texts.confirm_job(
        draft["kind"], draft["prompt"], draft["options"], draft["price"], balance, topup=topup,
        model=offers.title(draft["kind"], draft.get("model", "")), inputs=len(draft_inputs(draft)),
    )
    # The process lock before the transaction (see ``outbox.topic_message``).
    with outbox.serialised_writes(), transaction.atomic():
        if replacing:
            if not replace_quoted_draft(chat_id, quote=replacing, draft=draft):
                return None
        else:
            set_state(chat_id, DialogueState.CONFIRM, draft)
        retire_shown(chat_id)
        outbox.enqueue_text(chat_id, text, reply_markup=markup, topic=topic(chat_id, quote))
    return draft


def retire_shown(chat_id: int) -> int:
    """Take the keyboard off every quote message of the chat still showing one; returns how many.

    Renaming the row's topic is the conditional UPDATE that decides who queues the removal, so
    two callers never queue it twice. A quote message that failed to send has nothing to edit.
    """
    rows = OutboxMessage.objects.filter(
        topic__startswith=f"quote:{chat_id}:", method="sendMessage"
    ).exclude(status=OutboxStatus.FAILED).only("pk", "chat_id", "topic")
    retired = 0
    with outbox.serialised_writes(), transaction.atomic():
        for row in rows:
            done = "quote-done:" + row.topic.removeprefix("quote:")
            if OutboxMessage.objects.filter(pk=row.pk, topic=row.topic).update(topic=done):
                outbox.enqueue(remove_keyboard_message(chat_id, of=row))
                retired += 1
    return retired


def remove_keyboard(chat_id: int, message_id: int) -> None:
    """Take the keyboard off a message the customer pressed but that can do nothing any more."""
    outbox.enqueue(remove_keyboard_message(chat_id, message_id=message_id))


def resume_after_topup(chat_id: int, balance: int) -> dict | None:
    """After a top-up: show again, re-quoted, the chat's draft that waited for it; None if none."""
    conversation = get_state(chat_id)
    draft = conversation.data
    if conversation.state != DialogueState.CONFIRM or not draft.get("awaiting_topup") or not draft.get("quote"):
        return None
    return show(chat_id, requote(draft), balance, replacing=draft["quote"])


# --- prices on the buttons that change them ----------------------------------------------------


def _video_price(model: str, options: dict) -> tuple[int, int]:
    """(lowest, highest) price of a video with these settings over the video kinds."""
    prices = [offers.price(kind, *offers.fit(kind, model, options)) for kind in catalog.VIDEO_KINDS]
    return min(prices), max(prices)


def video_duration_prices(model: str = "") -> dict[int, int]:
    """Per duration the model takes, the cheapest video of that length: the duration buttons say
    "from" it, because the quality (std is the cheaper) is only chosen on the next step."""
    offer = offers.offer_for(JobKind.VIDEO_TEXT, model)
    modes = offers.values(offer, "mode") or [""]
    return {
        seconds: min(_video_price(model, {"duration": seconds, "mode": mode})[0] for mode in modes)
        for seconds in offers.values(offer, "duration")
    }


def video_mode_prices(duration: int | None, model: str = "") -> dict[str, tuple[int, bool]]:
    """Per quality, (the price at ``duration``, whether it is exact). Not exact when a video
    from a description and one from a photo are priced apart: the button shows the lower, as
    "from", because which one the customer makes is only known when they send it."""
    offer = offers.offer_for(JobKind.VIDEO_TEXT, model)
    ranges = {mode: _video_price(model, {"duration": duration, "mode": mode}) for mode in offers.values(offer, "mode")}
    return {mode: (low, low == high) for mode, (low, high) in ranges.items()}
