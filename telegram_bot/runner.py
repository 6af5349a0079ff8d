"""Running the bot: long polling with a graceful stop, and the delivery loop beside it."""
from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.db import connections

from telegram_bot.bot import ALLOWED_UPDATES, GenBot, build_bot
from telegram_bot.delivery import OutboxDelivery
from telegram_bot.sender import BotApi, TelegramError

logger = logging.getLogger(__name__)


class BotRunner:
    """``run()`` polls until ``stop()``; then finishes the handlers in flight, confirms the
    processed updates to the Bot API and stops the delivery loop (unsent rows stay durable)."""

    def __init__(self, *, bot: GenBot | None = None, poll_timeout: int | None = None, delivery: bool = True):
        self.bot = bot or build_bot()
        self.poll_timeout = settings.TELEGRAM_POLL_TIMEOUT if poll_timeout is None else poll_timeout
        self.delivery = OutboxDelivery() if delivery else None
        self._stopping = threading.Event()

    def run(self) -> None:
        """Poll until ``stop()`` (from a signal handler: this thread only waits, so it answers at once)."""
        if self.delivery is not None:
            self.delivery.start()
        poller = threading.Thread(target=self._poll, name="bot-polling", daemon=True)
        poller.start()
        try:
            while not self._stopping.wait(0.5) and poller.is_alive():
                pass
        finally:
            self._stopping.set()
            self.bot.stop_polling()
            # telebot notices the stop after the current long poll, or after its back-off pause
            # when the Bot API is unreachable; past this grace the polling thread is abandoned.
            poller.join(self.poll_timeout + 5)
            self._finish()

    def _poll(self) -> None:
        # A webhook left behind would make getUpdates fail with 409.
        try:
            self.bot.remove_webhook()
        except Exception as exc:  # noqa: BLE001 - a server without webhooks has none to remove
            logger.warning("could not remove a webhook before polling: %s", exc)
        while not self._stopping.is_set():
            try:
                self.bot.infinity_polling(
                    timeout=self.poll_timeout + 10, long_polling_timeout=self.poll_timeout,
                    allowed_updates=ALLOWED_UPDATES, logger_level=logging.ERROR,
                )
            except Exception:  # noqa: BLE001 - keep polling whatever telebot lets through
                logger.exception("polling failed; starting again")
            if not self._stopping.is_set():
                self._stopping.wait(1)

    def stop(self) -> None:
        self._stopping.set()
        self.bot.stop_polling()

    def _finish(self, timeout: float = 60) -> None:
        pool = getattr(self.bot, "worker_pool", None)
        if pool is not None:
            # Last task of each handler thread: close its own database connections (a barrier
            # makes each thread take exactly one of these tasks).
            barrier = threading.Barrier(len(pool.workers))

            def close_own_connections() -> None:
                try:
                    barrier.wait(timeout=timeout)
                except threading.BrokenBarrierError:
                    pass
                connections.close_all()

            for _worker in pool.workers:
                pool.put(close_own_connections)
            deadline = time.monotonic() + timeout
            while not pool.tasks.empty() and time.monotonic() < deadline:
                time.sleep(0.05)
            pool.close()  # waits for the task each worker is running
        if self.bot.last_update_id:
            try:
                BotApi(token=self.bot.token, timeout=5).call(
                    "getUpdates", {"offset": self.bot.last_update_id + 1, "limit": 1, "timeout": 0}
                )
            except TelegramError as exc:  # at worst Telegram sends the last updates again
                logger.warning("could not confirm the last processed updates: %s", exc)
        if self.delivery is not None:
            self.delivery.stop()
        connections.close_all()
        logger.info("bot stopped")
