"""The durable outbox: write a message now, in any process; the delivery loop sends it.

``enqueue_*`` insert an ``OutboxMessage`` (built by ``telegram_bot.messages``) inside the
caller's transaction when there is one, so a message about a change exists if and only if the
change committed, and wake the local delivery loop (``telegram_bot.delivery``) after commit.
"""
from __future__ import annotations

import threading
from contextlib import nullcontext
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from genbot.redis_client import REDIS_ERRORS, get_client

from telegram_bot.messages import edit_message, text_message
from telegram_bot.models import OutboxMessage, OutboxStatus

# Set after a commit that wrote rows (and by the delivery loop itself): the loop of this
# process sends them without waiting for its next poll.
wakeup = threading.Event()
# SQLite has one writer at a time and its busy handler sleeps in growing steps (up to 100 ms)
# while it waits; threads of one process queue on this lock instead, in order and without sleeps.
_sqlite_writes = threading.RLock()


def serialised_writes():
    """Hold while writing from a bot thread: on SQLite, one writer at a time, queued fairly.

    Inside a transaction it is not taken: on SQLite the (IMMEDIATE) transaction already holds
    the database's write lock, and waiting for ours there would invert the order of a thread
    that holds ours and waits for the database (e.g. a job finishing in the in-process pool
    while the delivery loop writes).
    """
    if connection.vendor != "sqlite" or connection.in_atomic_block:
        return nullcontext()
    return _sqlite_writes


def _wake() -> None:
    wakeup.set()


def enqueue(row: OutboxMessage, *, coalesce_key: str = "") -> OutboxMessage:
    """Write one message to send; with ``coalesce_key`` a still-pending one is replaced.

    Inside the caller's transaction when there is one. On SQLite a caller that opens its own
    transaction around this must hold ``serialised_writes()`` first (see ``topic_message``).
    """
    row.coalesce_key = coalesce_key
    with serialised_writes():
        return _enqueue(row)


def enqueue_all(rows: list[OutboxMessage]) -> list[OutboxMessage]:
    """Write several messages in one INSERT (inside the caller's transaction when there is one).

    For rows with no topic or coalescing key: nothing unique to collide with.
    """
    if any(row.topic or row.coalesce_key for row in rows):
        raise ValueError("enqueue_all takes plain messages; write topic and coalesced ones with enqueue()")
    with serialised_writes():
        saved = OutboxMessage.objects.bulk_create(rows)
    transaction.on_commit(_wake)
    return saved


def _enqueue(row: OutboxMessage) -> OutboxMessage:
    coalesce_key = row.coalesce_key
    if coalesce_key:
        replaced = OutboxMessage.objects.filter(coalesce_key=coalesce_key, status=OutboxStatus.PENDING).update(
            params=row.params, file_name=row.file_name
        )
        if replaced:
            transaction.on_commit(_wake)
            return OutboxMessage.objects.filter(coalesce_key=coalesce_key, status=OutboxStatus.PENDING).first()
    if not (coalesce_key or row.topic):
        # Nothing unique to collide with: one INSERT, no savepoint round trips.
        row.save(force_insert=True)
        transaction.on_commit(_wake)
        return row
    try:
        with transaction.atomic():
            row.save(force_insert=True)
    except IntegrityError:
        if not coalesce_key:
            raise
        # Another writer created the pending row for this key a moment ago: update it instead.
        OutboxMessage.objects.filter(coalesce_key=coalesce_key, status=OutboxStatus.PENDING).update(params=row.params)
        row = OutboxMessage.objects.filter(coalesce_key=coalesce_key).order_by("-id").first()
    transaction.on_commit(_wake)
    return row


def enqueue_text(chat_id: int, text: str, *, reply_markup: dict | None = None, topic: str = "") -> OutboxMessage:
    return enqueue(text_message(chat_id, text, reply_markup=reply_markup, topic=topic))


def find_topic_message(topic: str) -> OutboxMessage | None:
    """The message of ``topic`` (a job's progress message), None when none was written."""
    return OutboxMessage.objects.filter(topic=topic, method="sendMessage").first()


def topic_message(chat_id: int, topic: str, text: str, *, reply_markup: dict | None = None) -> OutboxMessage:
    """The one message of ``topic`` (a job's progress message): found, or written now."""
    row = find_topic_message(topic)
    if row is not None:
        return row
    # The process lock before the transaction: on SQLite, BEGIN IMMEDIATE takes the database's
    # write lock, and taking ours second could wait on a thread that holds ours and waits for it.
    with serialised_writes():
        try:
            with transaction.atomic():
                row = enqueue_text(chat_id, text, reply_markup=reply_markup, topic=topic)
        except IntegrityError:
            return OutboxMessage.objects.get(topic=topic, method="sendMessage")
    return row


def enqueue_progress_edit(of: OutboxMessage, text: str, *, reply_markup: dict | None = None) -> OutboxMessage:
    """Edit the progress message ``of`` sent (or will send); pending edits of it collapse into the newest.

    A job's progress and place in line change often: one chat gets such an edit at most once
    every ``BOT_PROGRESS_EDIT_INTERVAL`` seconds; a later one waits (``next_attempt_at``) and
    the ones after it collapse into it, so the chat sees the newest state, a little later.
    """
    row = edit_message(of, text, reply_markup=reply_markup)
    row.next_attempt_at = _progress_edit_slot(of.chat_id)
    return enqueue(row, coalesce_key=f"edit:{of.pk}")


_edit_client = None


def _progress_edit_slot(chat_id: int):
    """When the chat's next progress edit may go: None for now (or when Redis does not answer)."""
    global _edit_client
    interval_ms = int(settings.BOT_PROGRESS_EDIT_INTERVAL * 1000)
    if interval_ms <= 0:
        return None
    try:
        if _edit_client is None:
            _edit_client = get_client(role="fast")
        key = f"genbot:progress-edit:{chat_id}"
        if _edit_client.set(key, 1, nx=True, px=interval_ms):
            return None
        wait_ms = max(_edit_client.pttl(key), 0)
    except REDIS_ERRORS:
        return None
    return timezone.now() + timedelta(milliseconds=wait_ms)


def drop_pending_edits(of: OutboxMessage) -> int:
    """Forget progress edits of ``of`` not sent yet (a final state is about to replace them)."""
    with serialised_writes():
        deleted, _by_model = OutboxMessage.objects.filter(
            coalesce_key=f"edit:{of.pk}", status=OutboxStatus.PENDING
        ).delete()
    return deleted

