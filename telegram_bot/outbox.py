"""The durable outbox: write a message now, in any process; the delivery loop sends it.

``enqueue_*`` insert an ``OutboxMessage`` (inside the caller's transaction when there is one, so
a message about a change exists if and only if the change committed) and wake the local
delivery loop after commit. ``OutboxDelivery`` claims due rows with a conditional UPDATE, sends
them through the one sender and records what Telegram answered; transient failures are retried
later from the row, so nothing is lost when Telegram, the network or the process goes away.
"""
from __future__ import annotations

import logging
import mimetypes
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.core.files.storage import default_storage
from django.db import IntegrityError, close_old_connections, connections, transaction
from django.db.models import Min, Q
from django.utils import timezone

from telegram_bot.models import OutboxMessage, OutboxStatus
from telegram_bot.sender import Sender, TelegramError, get_sender

logger = logging.getLogger(__name__)

MEDIA_FIELDS = {"sendPhoto": "photo", "sendVideo": "video", "sendDocument": "document"}
# A row claimed longer ago than this belongs to a delivery loop that died: take it back.
STALE_CLAIM = timedelta(minutes=2)
# Transient failures are retried with a growing pause, for about a day, before giving up.
MAX_ATTEMPTS = 60

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
    from contextlib import nullcontext

    from django.db import connection

    if connection.vendor != "sqlite" or connection.in_atomic_block:
        return nullcontext()
    return _sqlite_writes


def _wake() -> None:
    wakeup.set()


def message(
    *, chat_id: int, method: str, params: dict, file_name: str = "", edit_of: OutboxMessage | None = None,
    topic: str = "",
) -> OutboxMessage:
    """One Bot API call to make, not written yet: for ``enqueue`` or, several at once, ``enqueue_all``."""
    params = {k: v for k, v in params.items() if v is not None}
    params["chat_id"] = chat_id
    return OutboxMessage(chat_id=chat_id, method=method, params=params, file_name=file_name, edit_of=edit_of, topic=topic)


def text_message(chat_id: int, text: str, *, reply_markup: dict | None = None, topic: str = "") -> OutboxMessage:
    return message(chat_id=chat_id, method="sendMessage", params={"text": text, "reply_markup": reply_markup}, topic=topic)


def edit_message(of: OutboxMessage, text: str, *, reply_markup: dict | None = None) -> OutboxMessage:
    """An edit of the message ``of`` sent (or will send)."""
    return message(chat_id=of.chat_id, method="editMessageText", params={"text": text, "reply_markup": reply_markup}, edit_of=of)


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


def enqueue_edit(of: OutboxMessage, text: str, *, reply_markup: dict | None = None) -> OutboxMessage:
    """Edit the message ``of`` sent (or will send); pending edits of it collapse into the newest."""
    return enqueue(edit_message(of, text, reply_markup=reply_markup), coalesce_key=f"edit:{of.pk}")


def drop_pending_edits(of: OutboxMessage) -> int:
    """Forget progress edits of ``of`` not sent yet (a final state is about to replace them)."""
    with serialised_writes():
        deleted, _by_model = OutboxMessage.objects.filter(
            coalesce_key=f"edit:{of.pk}", status=OutboxStatus.PENDING
        ).delete()
    return deleted


def enqueue_media(chat_id: int, method: str, file_name: str, *, caption: str = "", reply_markup: dict | None = None) -> OutboxMessage:
    return enqueue(media_message(chat_id, method, file_name, caption=caption, reply_markup=reply_markup))


def enqueue_invoice(chat_id: int, *, title: str, description: str, payload: str, currency: str, amount: int, label: str) -> OutboxMessage:
    return enqueue(message(
        chat_id=chat_id,
        method="sendInvoice",
        params={
            "title": title, "description": description, "payload": payload, "currency": currency,
            "prices": [{"label": label, "amount": amount}], "provider_token": "",
        },
    ))


class OutboxDelivery:
    """Sends due outbox rows: one at a time per chat (in id order), many chats in parallel."""

    def __init__(self, *, sender: Sender | None = None, threads: int | None = None, poll_interval: float = 0.5):
        from django.conf import settings

        self.sender = sender
        self.threads = threads or settings.TELEGRAM_SENDER_THREADS
        self.poll_interval = poll_interval
        self.token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._in_flight: set[int] = set()
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None
        self._last_reclaim = None
        self._futures: dict = {}

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> "OutboxDelivery":
        self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="outbox")
        self._thread = threading.Thread(target=self._run, name="outbox-delivery", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30) -> None:
        """Stop claiming; let sends in flight finish; rows claimed but not started go back to pending."""
        self._stop.set()
        wakeup.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            with self._lock:
                cancelled = [pk for pk, future in self._futures.items() if future.cancelled()]
            if cancelled:
                with serialised_writes():
                    OutboxMessage.objects.filter(pk__in=cancelled, status=OutboxStatus.SENDING).update(
                        status=OutboxStatus.PENDING, claimed_by=""
                    )
            deadline = time.monotonic() + timeout
            for thread in list(getattr(self._pool, "_threads", ())):
                thread.join(max(0.0, deadline - time.monotonic()))

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # noqa: BLE001 - the loop must survive a database hiccup
                logger.exception("outbox delivery round failed")
                close_old_connections()
            wakeup.wait(self.poll_interval)
            wakeup.clear()
            self._stop.wait(0.2)  # a burst of enqueues makes one round, not one each
        connections.close_all()

    # --- one round --------------------------------------------------------------------------

    def run_once(self) -> int:
        """Claim the next row of each idle chat that is due and hand it to the pool; returns the count."""
        now = timezone.now()
        if self._last_reclaim is None or now - self._last_reclaim > STALE_CLAIM / 4:
            self._last_reclaim = now
            with serialised_writes():
                OutboxMessage.objects.filter(status=OutboxStatus.SENDING, claimed_at__lt=now - STALE_CLAIM).update(
                    status=OutboxStatus.PENDING, claimed_by=""
                )
        # Only the oldest unsent row of each chat may go, so a chat's messages keep their order.
        heads = (
            OutboxMessage.objects.filter(status__in=(OutboxStatus.PENDING, OutboxStatus.SENDING))
            .values("chat_id").annotate(head=Min("id")).order_by().values_list("head", flat=True)[:1000]
        )
        with self._lock:
            busy = set(self._in_flight)
        due = [
            pk for pk, chat_id in OutboxMessage.objects.filter(pk__in=list(heads), status=OutboxStatus.PENDING)
            .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)).order_by("id").values_list("id", "chat_id")
            if chat_id not in busy
        ]
        if not due:
            return 0
        with serialised_writes():
            OutboxMessage.objects.filter(pk__in=due, status=OutboxStatus.PENDING).update(
                status=OutboxStatus.SENDING, claimed_by=self.token, claimed_at=now
            )
        claimed = list(OutboxMessage.objects.filter(pk__in=due, status=OutboxStatus.SENDING, claimed_by=self.token))
        for row in claimed:
            with self._lock:
                self._in_flight.add(row.chat_id)
            if self._pool is None:
                self._deliver(row)
            else:
                future = self._pool.submit(self._deliver, row)
                with self._lock:
                    if not future.done():
                        self._futures[row.pk] = future
        return len(claimed)

    def _deliver(self, row: OutboxMessage) -> None:
        try:
            deliver_row(row, self.sender or get_sender())
        except Exception:  # noqa: BLE001 - a bug in one row must not stop the others
            logger.exception("delivering outbox row %s failed", row.pk)
            _retry_later(row, "internal error")
        finally:
            with self._lock:
                self._in_flight.discard(row.chat_id)
                self._futures.pop(row.pk, None)
            if self._pool is not None:
                connections.close_all()
            wakeup.set()  # the chat's next row may go now


def deliver_row(row: OutboxMessage, sender: Sender) -> None:
    params = dict(row.params)
    if row.edit_of_id is not None:
        original = OutboxMessage.objects.filter(pk=row.edit_of_id).values_list("status", "sent_message_id").first()
        if original is None or original[0] == OutboxStatus.FAILED:
            return _finish(row, OutboxStatus.FAILED, error="the message to edit was never sent")
        if original[1] is None:
            return _retry_later(row, "the message to edit is not sent yet", delay=1)
        params["message_id"] = original[1]
    files = None
    handle = None
    try:
        if row.file_name:
            try:
                handle = default_storage.open(row.file_name, "rb")
            except (FileNotFoundError, OSError):
                return _finish(row, OutboxStatus.FAILED, error=f"file missing: {row.file_name}")
            mime = mimetypes.guess_type(row.file_name)[0] or "application/octet-stream"
            files = {MEDIA_FIELDS[row.method]: (row.file_name.rsplit("/", 1)[-1], handle, mime)}
        result = sender.call(row.method, params, files)
    except TelegramError as exc:
        if exc.not_modified:
            return _finish(row, OutboxStatus.SENT, message_id=params.get("message_id"))
        if exc.chat_gone:
            _mark_blocked(row.chat_id)
            return _finish(row, OutboxStatus.FAILED, error=str(exc))
        if exc.transient:
            return _retry_later(row, str(exc))
        logger.error("Telegram refused outbox row %s (%s): %s", row.pk, row.method, exc)
        return _finish(row, OutboxStatus.FAILED, error=str(exc))
    finally:
        if handle is not None:
            handle.close()
    message_id = result.get("message_id") if isinstance(result, dict) else None
    _finish(row, OutboxStatus.SENT, message_id=message_id)


def _finish(row: OutboxMessage, status: str, *, message_id=None, error: str = "") -> None:
    with serialised_writes():
        OutboxMessage.objects.filter(pk=row.pk, status=OutboxStatus.SENDING).update(
            status=status, sent_message_id=message_id, sent_at=timezone.now() if status == OutboxStatus.SENT else None,
            last_error=error[:500], claimed_by="",
        )


def _retry_later(row: OutboxMessage, error: str, *, delay: float | None = None) -> None:
    attempts = row.attempts + 1
    if attempts >= MAX_ATTEMPTS:
        logger.error("outbox row %s given up after %s attempts: %s", row.pk, attempts, error)
        return _finish(row, OutboxStatus.FAILED, error=error)
    pause = delay if delay is not None else min(1800.0, 2.0 ** min(attempts, 11))
    with serialised_writes():
        OutboxMessage.objects.filter(pk=row.pk, status=OutboxStatus.SENDING).update(
            status=OutboxStatus.PENDING, attempts=attempts, last_error=error[:500], claimed_by="",
            next_attempt_at=timezone.now() + timedelta(seconds=pause),
        )


def _mark_blocked(chat_id: int) -> None:
    """Telegram said 403: the person blocked the bot (unmarked when they write again)."""
    from billing.models import Customer
    from billing.services import mark_bot_blocked

    customer = Customer.objects.filter(telegram_id=chat_id, bot_blocked_at__isnull=True).first()
    if customer is not None:
        with serialised_writes():
            mark_bot_blocked(customer=customer)
