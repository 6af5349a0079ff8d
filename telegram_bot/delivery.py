"""The delivery loop: sends what ``telegram_bot.outbox`` wrote, through the one sender.

``OutboxDelivery`` claims due rows with a conditional UPDATE, sends them through the sender
(``telegram_bot.sender``) and records what Telegram answered; transient failures are retried
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

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import close_old_connections, connections
from django.db.models import Min, Q
from django.utils import timezone

from telegram_bot.messages import MEDIA_FIELDS
from telegram_bot.previews import photo_upload
from telegram_bot.models import OutboxMessage, OutboxStatus
from telegram_bot.outbox import serialised_writes, wakeup
from telegram_bot.sender import Sender, TelegramError, get_sender
from telegram_bot.services import mark_chats_blocked

logger = logging.getLogger(__name__)

# A row claimed longer ago than this belongs to a delivery loop that died: take it back.
STALE_CLAIM = timedelta(minutes=2)
# Transient failures are retried with a growing pause, for about a day, before giving up.
MAX_ATTEMPTS = 60


class OutboxDelivery:
    """Sends due outbox rows: one at a time per chat (in id order), many chats in parallel."""

    def __init__(self, *, sender: Sender | None = None, threads: int | None = None, poll_interval: float = 0.5):
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
            name = row.file_name.rsplit("/", 1)[-1]
            mime = mimetypes.guess_type(row.file_name)[0] or "application/octet-stream"
            if row.method == "sendPhoto":
                name, handle, mime = photo_upload(name, handle, mime)
            files = {MEDIA_FIELDS[row.method]: (name, handle, mime)}
        result = sender.call(row.method, params, files)
    except TelegramError as exc:
        if exc.not_modified:
            return _finish(row, OutboxStatus.SENT, message_id=params.get("message_id"))
        if exc.chat_gone:
            mark_chats_blocked(chat_ids=[row.chat_id])
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

