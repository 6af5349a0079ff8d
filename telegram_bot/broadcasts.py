"""Broadcasts: staff write a message and choose an audience; the outbox sends it once per chat.

The states are ``telegram_bot.models.Broadcast``'s. Each staff service is one durable
transaction and takes the acting member (None: an operator at the command line, who can do
anything); sending, scheduling and cancelling need ``telegram_bot.send_broadcast``.

Sending: ``start_broadcast`` moves it to sending and bounds the audience (customers up to the
newest one at that moment). The delivery loop (``advance_broadcasts``, about once a second)
starts scheduled broadcasts that are due, writes each sending broadcast's audience into the
outbox in batches (``write_audience_batch``: one transaction each; an INSERT that ignores
conflicts with UNIQUE (broadcast, chat_id), the cursor saved with the batch, so a process that
dies mid-way is continued by the next and no chat gets a second row) and marks a broadcast done
when every row is settled. The rows go at a lower priority than the bot's other messages and at
most ``BOT_BROADCAST_PER_SECOND``; a row whose request may have reached Telegram when its
process died is "in doubt" and never sent again (``telegram_bot.delivery``).

Lock contract: the broadcast row (``select_for_update``) in every write that changes its state or
writes its rows, so a cancel and a batch never interleave: once a cancel commits, no row of that
broadcast is written, and its pending rows are canceled in the same transaction.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.db.models import Count, Exists, Max, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing.models import Customer
from promotions.audience import broadcast_audience
from telegram_bot.exceptions import BroadcastNotPermitted, BroadcastStateConflict, InvalidBroadcast
from telegram_bot.models import (
    CAPTION_LIMIT, TEXT_LIMIT, AudienceLanguage, Broadcast, BroadcastStatus, JoinedVia, OutboxMessage, OutboxStatus,
)
from telegram_bot.outbox import serialised_writes, wakeup

SEND_PERMISSION = "telegram_bot.send_broadcast"
# Outbox rows written per transaction while writing an audience; batches per loop round.
AUDIENCE_BATCH = 1000
BATCHES_PER_ROUND = 10
# The text of the 403 a chat that blocked the bot answers with starts so (``TelegramError``).
BLOCKED_ERROR_PREFIX = "403"
UNSETTLED = (OutboxStatus.PENDING, OutboxStatus.SENDING, OutboxStatus.ON_WIRE)
MESSAGE_FIELDS = ("text", "picture", "button_text", "button_url")
AUDIENCE_FIELDS = ("language", "paid_at_least_once", "active_days", "joined_via", "include_blocked")


@dataclass(frozen=True)
class BroadcastFigures:
    """What became of a broadcast's rows. ``audience``: rows written (final once ``complete``)."""

    audience: int
    complete: bool
    queued: int  # not sent yet: pending, or claimed by a delivery loop
    sent: int
    failed: int  # Telegram refused it for another reason than a block
    blocked: int  # 403: the person blocked the bot (their customer is marked)
    canceled: int
    in_doubt: int  # the process sending it died with the request out: reached the chat at most once

    def line(self) -> str:
        return (f"audience {self.audience}{'' if self.complete else '+'}: queued {self.queued}, sent {self.sent}, "
                f"failed {self.failed}, blocked the bot {self.blocked}, canceled {self.canceled}, "
                f"in doubt {self.in_doubt}")


# --- staff services ------------------------------------------------------------------------


def create_broadcast(
    *, acting_user, text: str, picture=None, button_text: str = "", button_url: str = "", language: str = "",
    paid_at_least_once: bool = False, active_days: int | None = None, joined_via: str = "",
    include_blocked: bool = False,
) -> Broadcast:
    """A draft broadcast; ``picture`` a Django ``File`` (stored in default storage) or None."""
    broadcast = Broadcast(
        text=text, button_text=button_text, button_url=button_url, language=language or "",
        paid_at_least_once=paid_at_least_once, active_days=active_days, joined_via=joined_via or "",
        include_blocked=include_blocked,
    )
    if picture is not None:
        broadcast.picture.save(getattr(picture, "name", "") or "picture.jpg", picture, save=False)
    return save_draft(acting_user=acting_user, broadcast=broadcast)


def save_draft(*, acting_user, broadcast: Broadcast) -> Broadcast:
    """Write ``broadcast`` (new, or a draft edited in the admin) after checking its message and
    audience; raises ``InvalidBroadcast``, or ``BroadcastStateConflict`` when it is no longer a draft."""
    _check_permission(acting_user, "telegram_bot.add_broadcast" if broadcast.pk is None else "telegram_bot.change_broadcast")
    check_broadcast(broadcast)
    picture = broadcast.picture
    if picture and not picture._committed:  # a new upload (the UPDATE below does not store files)
        picture.save(picture.name.rsplit("/", 1)[-1], picture.file, save=False)
    with transaction.atomic(durable=True):
        if broadcast.pk is None:
            broadcast.status = BroadcastStatus.DRAFT
            broadcast.created_by = acting_user
            broadcast.save(force_insert=True)
            return broadcast
        fields = {name: getattr(broadcast, name) for name in (*MESSAGE_FIELDS, *AUDIENCE_FIELDS)}
        if not Broadcast.objects.filter(pk=broadcast.pk, status=BroadcastStatus.DRAFT).update(**fields):
            _refuse(broadcast)
    return broadcast


def schedule_broadcast(*, acting_user, broadcast: Broadcast, send_at: datetime) -> Broadcast:
    """A draft (or a scheduled broadcast, to move it) goes out at ``send_at`` (in the future)."""
    _check_permission(acting_user)
    if send_at is None or send_at <= timezone.now():
        raise InvalidBroadcast(_("Choose a time in the future to send it at."))
    with transaction.atomic(durable=True):
        moved = Broadcast.objects.filter(
            pk=broadcast.pk, status__in=(BroadcastStatus.DRAFT, BroadcastStatus.SCHEDULED)
        ).update(status=BroadcastStatus.SCHEDULED, send_at=send_at)
        if not moved:
            _refuse(broadcast)
    return Broadcast.objects.get(pk=broadcast.pk)


def start_broadcast(*, acting_user, broadcast: Broadcast) -> Broadcast:
    """Send a draft or scheduled broadcast now: the delivery loop writes its audience and sends it."""
    _check_permission(acting_user)
    with transaction.atomic(durable=True):
        started = _start(Broadcast.objects.filter(
            pk=broadcast.pk, status__in=(BroadcastStatus.DRAFT, BroadcastStatus.SCHEDULED)
        ))
        if not started:
            _refuse(broadcast)
        transaction.on_commit(wakeup.set)
    return Broadcast.objects.get(pk=broadcast.pk)


def cancel_broadcast(*, acting_user, broadcast: Broadcast) -> tuple[Broadcast, int]:
    """Stop a scheduled or sending broadcast: its pending rows are canceled (one UPDATE), rows
    already sent or on their way stay. Returns the broadcast and how many rows were canceled."""
    _check_permission(acting_user)
    with transaction.atomic(durable=True):
        locked = Broadcast.objects.select_for_update().filter(pk=broadcast.pk).first()
        if locked is None or locked.status not in (BroadcastStatus.SCHEDULED, BroadcastStatus.SENDING):
            _refuse(locked or broadcast)
        Broadcast.objects.filter(pk=locked.pk).update(status=BroadcastStatus.CANCELED, finished_at=timezone.now())
        canceled = OutboxMessage.objects.filter(broadcast_id=locked.pk, status=OutboxStatus.PENDING).update(
            status=OutboxStatus.CANCELED, claimed_by=""
        )
    return Broadcast.objects.get(pk=broadcast.pk), canceled


# --- reads ---------------------------------------------------------------------------------


def audience(broadcast: Broadcast):
    """The customers ``broadcast``'s filters choose (now; a started one is bounded by ``audience_through``)."""
    return broadcast_audience(
        language=broadcast.language or None, paid_at_least_once=broadcast.paid_at_least_once,
        active_days=broadcast.active_days, joined_via=broadcast.joined_via or None,
        include_blocked=broadcast.include_blocked,
    )


def audience_count(broadcast: Broadcast) -> int:
    """The preview: how many customers the broadcast would reach if it were sent now."""
    return audience(broadcast).count()


def figures(broadcast: Broadcast) -> BroadcastFigures:
    """Live figures from the broadcast's outbox rows (one query)."""
    by_status = {status: Count("id", filter=Q(status=status)) for status in OutboxStatus.values}
    counts = OutboxMessage.objects.filter(broadcast_id=broadcast.pk).aggregate(
        total=Count("id"),
        blocked=Count("id", filter=Q(status=OutboxStatus.FAILED, last_error__startswith=BLOCKED_ERROR_PREFIX)),
        **by_status,
    )
    size = Broadcast.objects.filter(pk=broadcast.pk).values_list("audience_size", flat=True).first()
    return BroadcastFigures(
        audience=counts["total"], complete=size is not None,
        queued=sum(counts[status] for status in UNSETTLED), sent=counts[OutboxStatus.SENT],
        failed=counts[OutboxStatus.FAILED] - counts["blocked"], blocked=counts["blocked"],
        canceled=counts[OutboxStatus.CANCELED], in_doubt=counts[OutboxStatus.IN_DOUBT],
    )


def message_params(broadcast: Broadcast) -> dict:
    """The Bot API parameters of the broadcast's message (without the chat): text or caption, the button."""
    params: dict = {"caption" if broadcast.picture else "text": broadcast.text}
    if broadcast.button_text:
        params["reply_markup"] = {"inline_keyboard": [[{"text": broadcast.button_text, "url": broadcast.button_url}]]}
    return params


# --- the delivery loop's part ----------------------------------------------------------------


def advance_broadcasts(*, now: datetime | None = None) -> None:
    """Start scheduled broadcasts that are due, write audiences, mark finished ones done."""
    now = now or timezone.now()
    with serialised_writes(), transaction.atomic(durable=True):
        _start(Broadcast.objects.filter(status=BroadcastStatus.SCHEDULED, send_at__lte=now), now=now)
    writing = Broadcast.objects.filter(status=BroadcastStatus.SENDING, audience_size__isnull=True)
    for broadcast_id in writing.values_list("id", flat=True):
        for _batch in range(BATCHES_PER_ROUND):
            if not write_audience_batch(broadcast_id=broadcast_id):
                break
    unsettled = OutboxMessage.objects.filter(broadcast_id=OuterRef("pk"), status__in=UNSETTLED)
    with serialised_writes():
        Broadcast.objects.filter(status=BroadcastStatus.SENDING, audience_size__isnull=False).filter(
            ~Exists(unsettled)
        ).update(status=BroadcastStatus.DONE, finished_at=now)


def write_audience_batch(*, broadcast_id: int, size: int = AUDIENCE_BATCH) -> bool:
    """Write the next ``size`` chats of a sending broadcast's audience; True while more remain.

    Resumable and idempotent: rows already written are ignored (UNIQUE (broadcast, chat_id)),
    and the cursor moves in the same transaction as the rows it covers.
    """
    with serialised_writes(), transaction.atomic(durable=True):
        broadcast = Broadcast.objects.select_for_update().filter(pk=broadcast_id).first()
        if broadcast is None or broadcast.status != BroadcastStatus.SENDING or broadcast.audience_size is not None:
            return False
        chats = list(
            audience(broadcast).filter(pk__gt=broadcast.audience_cursor, pk__lte=broadcast.audience_through)
            .values_list("pk", "telegram_id")[:size]
        )
        method = "sendPhoto" if broadcast.picture else "sendMessage"
        OutboxMessage.objects.bulk_create(
            [OutboxMessage(chat_id=chat_id, method=method, params={"chat_id": chat_id}, file_name=broadcast.picture.name or "",
                           broadcast_id=broadcast.pk) for _pk, chat_id in chats],
            ignore_conflicts=True,
        )
        fields = {"audience_cursor": chats[-1][0]} if chats else {}
        if len(chats) < size:
            fields["audience_size"] = OutboxMessage.objects.filter(broadcast_id=broadcast.pk).count()
        Broadcast.objects.filter(pk=broadcast.pk).update(**fields)
        if chats:
            transaction.on_commit(wakeup.set)
    return len(chats) == size


# --- rules ---------------------------------------------------------------------------------


def _start(broadcasts, *, now: datetime | None = None) -> int:
    """Move ``broadcasts`` (a filtered queryset: the conditional UPDATE) to sending, bounding their audience."""
    newest = Customer.objects.aggregate(newest=Max("pk"))["newest"] or 0
    return broadcasts.update(status=BroadcastStatus.SENDING, started_at=now or timezone.now(), audience_through=newest)


def check_broadcast(broadcast: Broadcast) -> None:
    """Raise ``InvalidBroadcast`` when the message or the audience breaks a rule (a form's check
    before saving; the services check again). Trims the text and the button's fields."""
    text = (broadcast.text or "").strip()
    if not text:
        raise InvalidBroadcast(_("The message is empty: write its text."))
    limit = CAPTION_LIMIT if broadcast.picture else TEXT_LIMIT
    if len(text) > limit:
        raise InvalidBroadcast(
            _("The text has %(length)s characters; Telegram allows %(limit)s (1024 under a picture)."),
            length=len(text), limit=limit,
        )
    broadcast.text = text
    broadcast.button_text = (broadcast.button_text or "").strip()
    broadcast.button_url = (broadcast.button_url or "").strip()
    if bool(broadcast.button_text) != bool(broadcast.button_url):
        raise InvalidBroadcast(_("A button needs both its text and its link."))
    if broadcast.button_url:
        try:
            URLValidator(schemes=["https"])(broadcast.button_url)
        except ValidationError:
            raise InvalidBroadcast(_("The button's link must be an https:// address.")) from None
    if broadcast.language not in AudienceLanguage.values or broadcast.joined_via not in JoinedVia.values:
        raise InvalidBroadcast(_("Choose the audience's language and how they joined from the lists."))
    if broadcast.active_days is not None and broadcast.active_days <= 0:
        raise InvalidBroadcast(_("Active in the last N days: N must be at least 1."))


def _check_permission(acting_user, permission: str = SEND_PERMISSION) -> None:
    if acting_user is not None and not acting_user.has_perm(permission):
        raise BroadcastNotPermitted()


def _refuse(broadcast: Broadcast) -> None:
    status = Broadcast.objects.filter(pk=broadcast.pk).values_list("status", flat=True).first() or broadcast.status
    raise BroadcastStateConflict(status=BroadcastStatus(status).label)
