"""The one outgoing sender: every message the bot, the workers or a broadcast sends goes here.

It keeps within Telegram's flood limits (about one message a second per chat, 30 a second in
all) by reserving a slot in two token buckets and sleeping until it; honours a 429's
``retry_after``; retries network errors and 5xx with backoff. Permanent refusals (400, 403)
raise ``TelegramError`` at once. Durability is the outbox's job (``telegram_bot.outbox``, ``telegram_bot.delivery``): the
sender makes one call succeed or says why it could not.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

import requests
from django.conf import settings

from genbot.tally import Tally
from telegram_bot.flood import SharedTokenBucket, TokenBucket

logger = logging.getLogger(__name__)


def bot_token() -> str:
    return settings.BOT_TOKEN or settings.BOT_DEMO_TOKEN


class TelegramError(Exception):
    def __init__(self, code: int, description: str, retry_after: int | None = None, *, unsent: bool = False):
        super().__init__(f"{code}: {description}")
        self.code, self.description, self.retry_after = code, description, retry_after
        # Certainly never reached Telegram (no connection was made); a 429 and a 4xx are certain too.
        self.unsent = unsent

    @property
    def chat_gone(self) -> bool:
        """The person blocked the bot or deleted their account: stop writing to them."""
        return self.code == 403

    @property
    def not_modified(self) -> bool:
        return self.code == 400 and "not modified" in self.description

    @property
    def transient(self) -> bool:
        return self.code == 429 or self.code >= 500 or self.code == 0


class BotApi:
    """A plain HTTP client of the Bot API at ``settings.TELEGRAM_API_URL``."""

    def __init__(self, *, api_url: str | None = None, token: str | None = None, timeout: float = 30):
        self.api_url = (api_url or settings.TELEGRAM_API_URL).rstrip("/")
        self.token = token or bot_token()
        self.timeout = timeout
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def call(self, method: str, params: dict | None = None, files: dict | None = None):
        data = {k: (json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v)
                for k, v in (params or {}).items() if v is not None}
        url = f"{self.api_url}/bot{self.token}/{method}"
        try:
            response = self._session().post(url, data=data, files=files or None, timeout=self.timeout)
        except requests.RequestException as exc:
            raise TelegramError(0, f"network error: {exc.__class__.__name__}", unsent=_never_connected(exc)) from exc
        try:
            body = response.json()
        except ValueError:
            raise TelegramError(response.status_code if response.status_code >= 400 else 502, "not a Bot API answer") from None
        if not body.get("ok"):
            retry_after = (body.get("parameters") or {}).get("retry_after")
            raise TelegramError(int(body.get("error_code") or response.status_code), str(body.get("description", "")), retry_after)
        return body.get("result")


def _never_connected(exc: requests.RequestException) -> bool:
    """The request cannot have reached the server: the connection was refused or timed out."""
    from urllib3.exceptions import NewConnectionError

    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(exc, requests.ConnectionError) and isinstance(reason, NewConnectionError)


class Sender:
    """Flood-limited, retrying calls to the Bot API; thread-safe, one per process."""

    def __init__(
        self,
        api: BotApi | None = None,
        *,
        per_chat: float | None = None,
        global_rate: float | None = None,
        max_attempts: int = 5,
        sleep: Callable[[float], None] = time.sleep,
        shared: bool = True,
    ):
        self.api = api or BotApi()
        per_chat = per_chat or settings.TELEGRAM_SEND_PER_CHAT
        global_rate = global_rate or settings.TELEGRAM_SEND_GLOBAL
        # A burst of two per chat (Telegram tolerates short bursts), one slot at a time overall
        # so that any second holds at most ``global_rate`` sends. Shared through Redis by every
        # process that sends for this bot (``shared=False``: this object's own buckets only).
        if shared:
            token_tag = (self.api.token or "").split(":")[0] or "bot"
            url = settings.REDIS_URL
            self.chat_bucket = SharedTokenBucket(name=f"{token_tag}:chat", rate=per_chat, capacity=2, redis_url=url)
            self.global_bucket = SharedTokenBucket(name=f"{token_tag}:all", rate=global_rate, capacity=1, redis_url=url)
            # Broadcasts' own pace within the overall one, so replies and results keep flowing.
            self.broadcast_bucket = SharedTokenBucket(
                name=f"{token_tag}:broadcast", rate=settings.BOT_BROADCAST_PER_SECOND, capacity=1, redis_url=url
            )
        else:
            self.chat_bucket = TokenBucket(rate=per_chat, capacity=2)
            self.global_bucket = TokenBucket(rate=global_rate, capacity=1)
            self.broadcast_bucket = TokenBucket(rate=settings.BOT_BROADCAST_PER_SECOND, capacity=1)
        self.max_attempts = max_attempts
        self.sleep = sleep
        self.stats = {"sent": 0, "too_many_requests": 0, "retries": 0}
        self._stats_lock = threading.Lock()

    def _count(self, key: str) -> None:
        with self._stats_lock:
            self.stats[key] += 1

    def call(self, method: str, params: dict, files: dict | None = None, *, on_wire: Callable[[], None] | None = None):
        """Make one Bot API call to ``params["chat_id"]`` within the limits; retry what is transient.

        ``on_wire`` (a broadcast's message, which must never go twice): the call also waits for
        the broadcasts' pace, ``on_wire()`` runs after every wait, right before the request goes
        out (it may raise to stop it), and nothing is retried: the caller learns what happened.
        """
        chat_id = params.get("chat_id")
        attempt = 0
        while True:
            attempt += 1
            if on_wire is not None:
                wait = self.broadcast_bucket.reserve()
                if wait:
                    self.sleep(wait)
            wait = self.chat_bucket.reserve(chat_id)
            if wait:
                self.sleep(wait)
            wait = self.global_bucket.reserve()
            if wait:
                self.sleep(wait)
            for value in (files or {}).values():
                if hasattr(value[1], "seek"):
                    value[1].seek(0)
            if on_wire is not None:
                on_wire()
            try:
                result = self.api.call(method, params, files)
                self._count("sent")
                return result
            except TelegramError as exc:
                if exc.code == 429:
                    self._count("too_many_requests")
                    retry_after = max(1, int(exc.retry_after or 1))
                    logger.warning("429 from Telegram for chat %s: waiting %ss", chat_id, retry_after)
                    self.chat_bucket.block(chat_id, retry_after)
                    if on_wire is None and attempt < self.max_attempts * 2:
                        continue
                elif on_wire is None and exc.transient and attempt < self.max_attempts:
                    self._count("retries")
                    self.sleep(min(8.0, 0.5 * 2 ** (attempt - 1)))
                    continue
                raise

    # --- conveniences used by the outbox and broadcasts ---------------------------------------

    def send_message(self, chat_id: int, text: str, reply_markup: dict | None = None):
        return self.call("sendMessage", {"chat_id": chat_id, "text": text, "reply_markup": reply_markup})


_default: Sender | None = None
_default_lock = threading.Lock()


def get_sender() -> Sender:
    """The process's sender (its buckets are what keep the process within the limits)."""
    global _default
    with _default_lock:
        if _default is None or _default.api.api_url != settings.TELEGRAM_API_URL.rstrip("/") or _default.api.token != bot_token():
            _default = Sender()
        return _default


class BroadcastResult(Tally):
    counts = ("sent", "blocked", "failed", "too_many_requests")

    def __init__(self, **given: int):
        super().__init__(**given)
        self.seconds = 0.0
        self.errors: list[str] = []

    @property
    def messages_per_second(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0


def broadcast(
    chat_ids: Iterable[int],
    text: str,
    *,
    reply_markup: dict | None = None,
    on_progress: Callable[[BroadcastResult], None] | None = None,
    sender: Sender | None = None,
    threads: int | None = None,
) -> BroadcastResult:
    """Send ``text`` to every chat now, through the sender's limits, and wait; mark customers who
    blocked the bot (``telegram_bot.services.mark_chats_blocked``).

    For support's message to a few selected customers (the page waits for the counts) and the
    sender's benchmark. Broadcasts go through the outbox (``telegram_bot.broadcasts``): durable,
    once per chat, at a lower priority.

    Returns the counts (sent, blocked, failed, 429s received) and the time taken.
    """
    from telegram_bot.services import mark_chats_blocked

    sender = sender or get_sender()
    result = BroadcastResult()
    lock = threading.Lock()
    before_429 = sender.stats["too_many_requests"]
    started = time.monotonic()

    gone: list[int] = []

    def one(chat_id: int) -> None:
        try:
            sender.send_message(chat_id, text, reply_markup)
            outcome = "sent"
        except TelegramError as exc:
            outcome = "blocked" if exc.chat_gone else "failed"
            with lock:
                if exc.chat_gone:
                    gone.append(chat_id)
                else:
                    result.errors.append(f"{chat_id}: {exc}")
        with lock:
            result.add(outcome)
            if on_progress is not None:
                on_progress(result)

    with ThreadPoolExecutor(max_workers=threads or settings.TELEGRAM_SENDER_THREADS) as pool:
        for _ in pool.map(one, chat_ids):
            pass
    # Marked here, in the caller's thread (and transaction), not from the pool's threads.
    mark_chats_blocked(chat_ids=gone)
    result.seconds = time.monotonic() - started
    result.too_many_requests = sender.stats["too_many_requests"] - before_429
    return result
