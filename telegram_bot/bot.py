"""The TeleBot instance: pointed at ``settings.TELEGRAM_API_URL``, middleware and handlers attached."""
from __future__ import annotations

import logging

import telebot
from django.conf import settings
from telebot import apihelper, types

from telegram_bot.sender import bot_token

logger = logging.getLogger(__name__)
# telebot gives its logger a stderr handler of its own; without it its records go to the root
# handlers of settings.LOGGING (one format, and the filter that scrubs the token from its URLs).
telebot.logger.removeHandler(telebot.console_output_handler)

# The updates the bot asks for (Telegram remembers the list; both polling and the webhook use it).
ALLOWED_UPDATES = ["message", "callback_query", "pre_checkout_query"]


def configure_api() -> None:
    """Point telebot at the configured Bot API server (Telegram's, the sandbox, a test server)."""
    base = settings.TELEGRAM_API_URL.rstrip("/")
    apihelper.API_URL = f"{base}/bot{{0}}/{{1}}"
    apihelper.FILE_URL = f"{base}/file/bot{{0}}/{{1}}"


class LogExceptions(telebot.ExceptionHandler):
    """A failing handler or middleware is logged; the polling loop goes on."""

    def handle(self, exception):
        logger.error("update processing failed", exc_info=exception if isinstance(exception, BaseException) else None)
        return True


class GenBot(telebot.TeleBot):
    def get_updates(self, offset=None, limit=None, timeout=20, allowed_updates=None, long_polling_timeout=20):
        """As telebot's, but a malformed update is logged and skipped instead of failing the batch."""
        raw = apihelper.get_updates(
            self.token, offset=offset, limit=limit, timeout=timeout, allowed_updates=allowed_updates,
            long_polling_timeout=long_polling_timeout,
        )
        return parse_updates(raw, self)

    def skip_malformed(self, update_id) -> None:
        if isinstance(update_id, int) and update_id > self.last_update_id:
            self.last_update_id = update_id


def parse_updates(raw: list, bot: GenBot | None = None) -> list[types.Update]:
    updates = []
    for item in raw or []:
        try:
            updates.append(types.Update.de_json(item))
        except Exception:  # noqa: BLE001 - anything Telegram (or an attacker) sends must not stop the loop
            logger.warning("skipping a malformed update: %.300r", item, exc_info=True)
            if bot is not None and isinstance(item, dict):
                bot.skip_malformed(item.get("update_id"))
    return updates


def build_bot(*, threaded: bool = True, num_threads: int | None = None) -> GenBot:
    from telegram_bot import handlers
    from telegram_bot.middleware import CustomerMiddleware

    configure_api()
    bot = GenBot(
        bot_token(),
        threaded=threaded,
        num_threads=num_threads or settings.BOT_HANDLER_THREADS,
        use_class_middlewares=True,
        exception_handler=LogExceptions(),
        validate_token=False,
    )
    bot.setup_middleware(CustomerMiddleware(bot))
    handlers.register(bot)
    return bot
