"""The delivery loop: sends what ``telegram_bot.outbox`` wrote, through the one sender.

``OutboxDelivery`` claims due rows with a conditional UPDATE, sends them through the sender
(``telegram_bot.sender``) and records what Telegram answered; transient failures are retried
later from the row, so nothing is lost when Telegram, the network or the process goes away.

A regular message is delivered at least once: a row whose loop died is sent again. A broadcast's
row (``telegram_bot.broadcasts``) at most once: right before its request goes out (after every
flood-limit wait) one UPDATE marks it on the wire; a dead loop's row that never got that far goes
back to pending, one that did is "in doubt" and is not sent again. Broadcast rows yield to the
others: they have a pool of their own (half as many threads) and ``BOT_BROADCAST_PER_SECOND``.
"""
from __future__ import annotations

import logging
import math
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

from telegram_bot import broadcasts
from telegram_bot.messages import MEDIA_FIELDS
from telegram_bot.previews import photo_upload
from telegram_bot.models import Broadcast, BroadcastStatus, OutboxMessage, OutboxStatus
from telegram_bot.outbox import serialised_writes, wakeup
from telegram_bot.sender import Sender, TelegramError, get_sender
from telegram_bot.services import mark_chats_blocked

logger = logging.getLogger(__name__)

# Transient failures are retried with a growing pause, for about a day, before giving up.
MAX_ATTEMPTS = 60
# How often the loop starts due broadcasts, writes their audiences and closes finished ones.
BROADCAST_STEP = timedelta(seconds=1)
CLAIMED = (OutboxStatus.SENDING, OutboxStatus.ON_WIRE)
IN_DOUBT_AFTER_DEATH = "the process sending it stopped after the request went out; not sent again"


def stale_claim() -> timedelta:
    """A row claimed longer ago than this belongs to a delivery loop that died: take it back."""
    return timedelta(seconds=settings.BOT_OUTBOX_STALE_CLAIM)


class _Reclaimed(Exception):
    """The row is no longer this loop's (another loop took it back): do not send it."""


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
        self._last_broadcast_step = None
        self._futures: dict = {}
        # Broadcast rows go to a pool of their own (half as many threads), so they never take a
        # thread from replies; at most two per thread (and a second's worth) are claimed ahead,
        # so a dead loop leaves few claimed and none waits long in the queue.
        self._broadcast_pool: ThreadPoolExecutor | None = None
        self._broadcast_rows: set[int] = set()
        self.broadcast_threads = max(1, self.threads // 2)
        self.broadcast_ahead = min(2 * self.broadcast_threads, max(1, math.ceil(settings.BOT_BROADCAST_PER_SECOND)))

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> "OutboxDelivery":
        self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="outbox")
        self._broadcast_pool = ThreadPoolExecutor(max_workers=self.broadcast_threads, thread_name_prefix="outbox-broadcast")
        self._thread = threading.Thread(target=self._run, name="outbox-delivery", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30) -> None:
        """Stop claiming; let sends in flight finish; rows claimed but not started go back to pending."""
        self._stop.set()
        wakeup.set()
        if self._thread is not None:
            self._thread.join(timeout)
        pools = [pool for pool in (self._pool, self._broadcast_pool) if pool is not None]
        if pools:
            for pool in pools:
                pool.shutdown(wait=False, cancel_futures=True)
            with self._lock:
                cancelled = [pk for pk, future in self._futures.items() if future.cancelled()]
            if cancelled:
                with serialised_writes():
                    OutboxMessage.objects.filter(pk__in=cancelled, status=OutboxStatus.SENDING).update(  # never on the wire
                        status=OutboxStatus.PENDING, claimed_by=""
                    )
            deadline = time.monotonic() + timeout
            for thread in [thread for pool in pools for thread in list(getattr(pool, "_threads", ()))]:
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
        if self._last_reclaim is None or now - self._last_reclaim > stale_claim() / 4:
            self._last_reclaim = now
            reclaim_stale_rows(now=now)
        if self._last_broadcast_step is None or now - self._last_broadcast_step >= BROADCAST_STEP:
            self._last_broadcast_step = now
            try:
                broadcasts.advance_broadcasts(now=now)
            except Exception:  # noqa: BLE001 - the regular messages must keep going
                logger.exception("advancing broadcasts failed")
                close_old_connections()
        due_now = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
        # Only the oldest unsent row of each chat may go, so a chat's messages keep their order.
        heads = (
            OutboxMessage.objects.filter(status__in=(OutboxStatus.PENDING, OutboxStatus.SENDING), broadcast__isnull=True)
            .values("chat_id").annotate(head=Min("id")).order_by().values_list("head", flat=True)[:1000]
        )
        with self._lock:
            busy = set(self._in_flight)
            broadcast_room = self.broadcast_ahead - len(self._broadcast_rows)
        due = [
            (pk, chat_id) for pk, chat_id in OutboxMessage.objects.filter(pk__in=list(heads), status=OutboxStatus.PENDING)
            .filter(due_now).order_by("id").values_list("id", "chat_id")
            if chat_id not in busy
        ]
        if broadcast_room > 0:
            # Then broadcast rows, oldest broadcast first, for the broadcasts' own pool.
            taken = busy | {chat_id for _pk, chat_id in due}
            for pk, chat_id in (
                OutboxMessage.objects.filter(status=OutboxStatus.PENDING, broadcast__isnull=False).filter(due_now)
                .order_by("id").values_list("id", "chat_id")[:broadcast_room * 2]
            ):
                if broadcast_room and chat_id not in taken:
                    due.append((pk, chat_id))
                    taken.add(chat_id)
                    broadcast_room -= 1
        if not due:
            return 0
        pks = [pk for pk, _chat_id in due]
        with serialised_writes():
            OutboxMessage.objects.filter(pk__in=pks, status=OutboxStatus.PENDING).update(
                status=OutboxStatus.SENDING, claimed_by=self.token, claimed_at=now
            )
        claimed = list(
            OutboxMessage.objects.filter(pk__in=pks, status=OutboxStatus.SENDING, claimed_by=self.token)
            .select_related("broadcast")
        )
        for row in claimed:
            with self._lock:
                self._in_flight.add(row.chat_id)
                if row.broadcast_id is not None:
                    self._broadcast_rows.add(row.pk)
            pool = self._pool if row.broadcast_id is None else self._broadcast_pool
            if pool is None:
                self._deliver(row)
            else:
                future = pool.submit(self._deliver, row)
                with self._lock:
                    if not future.done():
                        self._futures[row.pk] = future
        return len(claimed)

    def _deliver(self, row: OutboxMessage) -> None:
        try:
            deliver_row(row, self.sender or get_sender(), token=self.token)
        except _Reclaimed:
            logger.warning("outbox row %s was taken back before it went out; left to its new owner", row.pk)
        except Exception:  # noqa: BLE001 - a bug in one row must not stop the others
            logger.exception("delivering outbox row %s failed", row.pk)
            _retry_later(row, "internal error")  # a row not on the wire; one on it:
            _finish(row, OutboxStatus.IN_DOUBT, error="internal error after the request went out", only_on_wire=True)
        finally:
            with self._lock:
                self._in_flight.discard(row.chat_id)
                self._broadcast_rows.discard(row.pk)
                self._futures.pop(row.pk, None)
            if self._pool is not None:
                connections.close_all()
            wakeup.set()  # the chat's next row may go now


def reclaim_stale_rows(*, now=None) -> tuple[int, int]:
    """Take back the rows of delivery loops that died: (back to pending, now in doubt).

    A claimed row never marked on the wire was not sent: pending again. A broadcast row on the
    wire may have reached the chat: in doubt, never sent again.
    """
    stale = OutboxMessage.objects.filter(claimed_at__lt=(now or timezone.now()) - stale_claim())
    with serialised_writes():
        # A broadcast canceled meanwhile: its claimed rows do not come back to be sent.
        stale.filter(status=OutboxStatus.SENDING, broadcast__status=BroadcastStatus.CANCELED).update(
            status=OutboxStatus.CANCELED, claimed_by=""
        )
        pending = stale.filter(status=OutboxStatus.SENDING).update(status=OutboxStatus.PENDING, claimed_by="")
        in_doubt = stale.filter(status=OutboxStatus.ON_WIRE).update(
            status=OutboxStatus.IN_DOUBT, claimed_by="", last_error=IN_DOUBT_AFTER_DEATH
        )
    if in_doubt:
        logger.warning("%s broadcast row(s) of a dead delivery loop are in doubt and will not be sent again", in_doubt)
    return pending, in_doubt


def deliver_row(row: OutboxMessage, sender: Sender, *, token: str | None = None) -> None:
    """Send one claimed row and record the outcome. ``token``: the claim's (a broadcast row is
    marked on the wire only while that claim holds)."""
    params = dict(row.params)
    if row.edit_of_id is not None:
        original = OutboxMessage.objects.filter(pk=row.edit_of_id).values_list("status", "sent_message_id").first()
        if original is None or original[0] == OutboxStatus.FAILED:
            return _finish(row, OutboxStatus.FAILED, error="the message to edit was never sent")
        if original[1] is None:
            return _retry_later(row, "the message to edit is not sent yet", delay=1)
        params["message_id"] = original[1]
    broadcast = row.broadcast if row.broadcast_id is not None else None
    file_name = row.file_name
    if broadcast is not None:
        params.update(broadcasts.message_params(broadcast))
        if broadcast.picture and not broadcast.picture_file_id:  # another row may have uploaded it meanwhile
            broadcast.picture_file_id = Broadcast.objects.filter(pk=broadcast.pk).values_list("picture_file_id", flat=True).get()
        if broadcast.picture_file_id:
            params[MEDIA_FIELDS[row.method]], file_name = broadcast.picture_file_id, ""
    files = None
    handle = None
    try:
        if file_name:
            try:
                handle = default_storage.open(file_name, "rb")
            except (FileNotFoundError, OSError):
                return _finish(row, OutboxStatus.FAILED, error=f"file missing: {file_name}")
            name = file_name.rsplit("/", 1)[-1]
            mime = mimetypes.guess_type(file_name)[0] or "application/octet-stream"
            if row.method == "sendPhoto":
                name, handle, mime = photo_upload(name, handle, mime)
            files = {MEDIA_FIELDS[row.method]: (name, handle, mime)}
        on_wire = (lambda: _mark_on_wire(row, token)) if broadcast is not None else None
        result = sender.call(row.method, params, files, on_wire=on_wire)
    except TelegramError as exc:
        if exc.not_modified:
            return _finish(row, OutboxStatus.SENT, message_id=params.get("message_id"))
        if exc.chat_gone:
            mark_chats_blocked(chat_ids=[row.chat_id])
            return _finish(row, OutboxStatus.FAILED, error=str(exc))
        if broadcast is not None and exc.transient and not (exc.code == 429 or exc.unsent):
            # It may have reached the chat (a 5xx, a connection broken mid-way): never again.
            return _finish(row, OutboxStatus.IN_DOUBT, error=str(exc))
        if exc.transient:
            delay = exc.retry_after if broadcast is not None else None  # the sender retried a regular one's 429s
            return _retry_later(row, str(exc), delay=delay, not_sent=True)
        logger.error("Telegram refused outbox row %s (%s): %s", row.pk, row.method, exc)
        return _finish(row, OutboxStatus.FAILED, error=str(exc))
    finally:
        if handle is not None:
            handle.close()
    message_id = result.get("message_id") if isinstance(result, dict) else None
    _finish(row, OutboxStatus.SENT, message_id=message_id)
    if broadcast is not None and files and isinstance(result, dict) and result.get("photo"):
        _remember_picture(broadcast, result["photo"][-1].get("file_id", ""))


def _mark_on_wire(row: OutboxMessage, token: str | None) -> None:
    """The request goes out now: from here a dead process leaves the row in doubt, not pending."""
    claim = {"claimed_by": token} if token else {}
    with serialised_writes():
        # claimed_at restarts: a dead loop's row is told from a live one's by the time it went out.
        marked = OutboxMessage.objects.filter(pk=row.pk, status=OutboxStatus.SENDING, **claim).update(
            status=OutboxStatus.ON_WIRE, claimed_at=timezone.now()
        )
    if not marked:
        raise _Reclaimed()


def _remember_picture(broadcast: Broadcast, file_id: str) -> None:
    if file_id:
        with serialised_writes():
            Broadcast.objects.filter(pk=broadcast.pk, picture_file_id="").update(picture_file_id=file_id)


def _finish(row: OutboxMessage, status: str, *, message_id=None, error: str = "", only_on_wire: bool = False) -> None:
    claimed = (OutboxStatus.ON_WIRE,) if only_on_wire else CLAIMED
    if status == OutboxStatus.SENT:
        claimed = (*claimed, OutboxStatus.IN_DOUBT)  # its answer came after all: it is no longer in doubt
    with serialised_writes():
        OutboxMessage.objects.filter(pk=row.pk, status__in=claimed).update(
            status=status, sent_message_id=message_id, sent_at=timezone.now() if status == OutboxStatus.SENT else None,
            last_error=error[:500], claimed_by="",
        )


def _retry_later(row: OutboxMessage, error: str, *, delay: float | None = None, not_sent: bool = False) -> None:
    """Back to pending for a later try. A broadcast row on the wire only when Telegram certainly
    did not take it (``not_sent``: a 429, no connection made)."""
    attempts = row.attempts + 1
    if attempts >= MAX_ATTEMPTS:
        logger.error("outbox row %s given up after %s attempts: %s", row.pk, attempts, error)
        return _finish(row, OutboxStatus.FAILED, error=error)
    pause = delay if delay is not None else min(1800.0, 2.0 ** min(attempts, 11))
    with serialised_writes():
        OutboxMessage.objects.filter(pk=row.pk, status__in=CLAIMED if not_sent else (OutboxStatus.SENDING,)).update(
            status=OutboxStatus.PENDING, attempts=attempts, last_error=error[:500], claimed_by="",
            next_attempt_at=timezone.now() + timedelta(seconds=pause),
        )
