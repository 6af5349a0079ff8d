"""The real bot loop (``BotRunner``: telebot long polling + the outbox delivery loop) against the
local Bot API sandbox, with jobs in the in-process pool and fast fake providers."""
from __future__ import annotations

import io
import itertools
import os
import threading
import time

import pytest
import redis
from PIL import Image

from standins.telegram import SandboxServer

# Chat ids unique to this run, so Redis rate-limit windows of earlier runs never interfere.
_chat_ids = itertools.count(int(time.time() * 1000) % 10**9 * 10 + os.getpid() % 10 * 10**10)


def new_chat_id() -> int:
    return next(_chat_ids)


class Chat:
    """One person talking to the bot through the sandbox, and what they see."""

    def __init__(self, sandbox: SandboxServer, chat_id: int, *, language: str = "en", first_name: str = "Ann"):
        self.sandbox = sandbox
        self.state = sandbox.state
        self.chat_id = chat_id
        self.state.user(chat_id, language_code=language, first_name=first_name)
        self.mark = 0

    def send(self, text: str) -> None:
        self.mark = self._last_seq()
        self.state.user_sends(self.chat_id, text)

    def send_photo(self, caption: str = "", *, size: tuple[int, int] = (512, 512), data: bytes | None = None,
                   media_group_id: str = "") -> None:
        """A photo; with ``media_group_id`` one photo of an album (Telegram sends each as an update)."""
        self.mark = self._last_seq()
        if data is None:
            buffer = io.BytesIO()
            Image.new("RGB", size, (200, 30, 30)).save(buffer, "PNG")
            data = buffer.getvalue()
        if not media_group_id:
            self.state.user_sends_photo(self.chat_id, data, caption=caption)
            return
        file_id = self.state.store_file(data, "image/png", "photo.png")
        photo = [{"file_id": file_id, "file_unique_id": file_id[:16], "width": size[0], "height": size[1],
                  "file_size": len(data)}]
        fields = {"photo": photo, "media_group_id": media_group_id, **({"caption": caption} if caption else {})}
        self.state.user_sends(self.chat_id, **fields)

    def press(self, message: dict, label: str) -> None:
        """Press the inline button whose text contains ``label`` (or whose data equals it)."""
        for row in message["reply_markup"]["inline_keyboard"]:
            for button in row:
                if label in button["text"] or button.get("callback_data") == label:
                    self.mark = self._last_seq()
                    self.state.user_presses(self.chat_id, message["message_id"], button["callback_data"])
                    return
        raise AssertionError(f"no button {label!r} in {message['reply_markup']}")

    def _last_seq(self) -> int:
        messages = self.state.messages(self.chat_id)
        return max((m["_seq"] for m in messages), default=0)

    def bot_messages(self, *, since_mark: bool = True) -> list[dict]:
        after = self.mark if since_mark else 0
        return [m for m in self.state.messages(self.chat_id, after_seq=after) if m["from"].get("is_bot")]

    def wait_for(self, predicate, *, timeout: float = 15, since_mark: bool = True) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.bot_messages(since_mark=since_mark):
                if predicate(message):
                    return message
            time.sleep(0.05)
        seen = [(m.get("text") or m.get("caption") or list(m)) for m in self.bot_messages(since_mark=False)]
        raise AssertionError(f"no such bot message within {timeout}s; the chat shows: {seen}")

    def wait_text(self, fragment: str, **kwargs) -> dict:
        return self.wait_for(lambda m: fragment in (m.get("text") or m.get("caption") or ""), **kwargs)

    def assert_quiet(self, seconds: float = 1.5) -> None:
        time.sleep(seconds)
        assert self.bot_messages() == [], [m.get("text") for m in self.bot_messages()]


def _clear_rate_limits(url: str) -> None:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.3)
        keys = list(client.scan_iter("genbot:rl:*", count=1000))
        if keys:
            client.delete(*keys)
    except redis.RedisError:
        pass


@pytest.fixture
def bot(sandbox, settings, transactional_db, tmp_path):
    """The running bot. Yields a factory: ``bot.chat(language=...)`` -> a ``Chat``."""
    from jobs import queueing
    from telegram_bot.delivery import OutboxDelivery
    from telegram_bot.runner import BotRunner

    settings.TELEGRAM_POLL_TIMEOUT = 1
    settings.FAKE_PROVIDER_LATENCY = 0.6
    settings.FAKE_PROVIDER_FAILURE_RATE = 0.0
    settings.MEDIA_ROOT = str(tmp_path / "media")
    # Jobs run in this process's pool: the queues point at a Redis that is not there.
    settings.RQ_QUEUES = {name: {**conf, "URL": "redis://127.0.0.1:1/0"} for name, conf in settings.RQ_QUEUES.items()}
    queueing.forget_redis_health()
    _clear_rate_limits(settings.REDIS_URL)

    runner = BotRunner(poll_timeout=1)
    runner.delivery = OutboxDelivery(poll_interval=0.1)
    thread = threading.Thread(target=runner.run, name="test-bot", daemon=True)
    thread.start()

    class Harness:
        def __init__(self):
            self.sandbox = sandbox
            self.runner = runner

        def chat(self, **profile) -> Chat:
            return Chat(sandbox, new_chat_id(), **profile)

    yield Harness()
    runner.stop()
    thread.join(20)
    assert not thread.is_alive(), "the bot did not stop"
    queueing.shutdown_fallback(wait=True)
    queueing.forget_redis_health()
