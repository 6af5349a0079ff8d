"""Secrets never leave the process in a log line, a printed traceback or a Sentry event.

telebot puts the bot token in every URL (``/bot<token>/getUpdates``), and requests and telebot
put those URLs in their exception messages; a traceback or a Sentry event (frame variables,
breadcrumbs, spans) would carry the token out. Everything that writes text out passes it through
``redact``:

- ``RedactingFilter`` on every handler of ``settings.LOGGING`` rewrites the message, the
  formatted traceback and the stack of each record;
- ``sentry_before_send`` walks every Sentry event (errors, transactions, logs);
- ``install_excepthooks`` covers tracebacks Python prints itself (an uncaught exception in the
  main thread or in another thread).

The secrets are read from the settings at each call (tests change them), see ``SECRET_SETTINGS``.
"""
from __future__ import annotations

import functools
import logging
import re
import sys
import threading
import traceback
from typing import Any

PLACEHOLDER = "[redacted]"
# Settings whose values are secrets. The sandbox's demo token (BOT_DEMO_TOKEN) is public.
SECRET_SETTINGS = (
    "BOT_TOKEN", "TELEGRAM_WEBHOOK_SECRET", "YOOKASSA_SECRET_KEY", "NANO_BANANA_API_KEY", "KLING_API_KEY",
    "METRICS_TOKEN", "SECRET_KEY",
)
# Shorter values are not scrubbed: replacing every "abc" in every line would garble logs, and a
# secret that short protects nothing anyway.
MIN_SECRET_LENGTH = 6


def secret_values() -> tuple[str, ...]:
    """The configured secrets, plus the secret halves of ``id:secret`` pairs (the bot token's
    part after the colon, Kling's secret key) so a URL-encoded ``id%3Asecret`` is caught too."""
    from django.conf import settings

    values: set[str] = set()
    for name in SECRET_SETTINGS:
        value = str(getattr(settings, name, "") or "")
        values.add(value)
        if ":" in value:
            # Not the numeric bot id before the token's colon: it is public, and names the bot.
            values.update(part for part in value.split(":") if not part.isdigit())
    s3_options = settings.STORAGES.get("default", {}).get("OPTIONS", {})
    values.add(str(s3_options.get("secret_key") or ""))
    # Longest first, so a secret that contains another is replaced whole.
    return tuple(sorted((v for v in values if len(v) >= MIN_SECRET_LENGTH), key=len, reverse=True))


@functools.lru_cache(maxsize=8)
def _pattern(values: tuple[str, ...]) -> re.Pattern | None:
    return re.compile("|".join(map(re.escape, values))) if values else None


def redact(text: str) -> str:
    try:
        pattern = _pattern(secret_values())
    except Exception:  # noqa: BLE001 - settings not configured (a crash before Django set up): nothing to scrub
        return text
    return pattern.sub(PLACEHOLDER, text) if pattern is not None else text


def redact_data(value: Any) -> Any:
    """``value`` with every string inside it (dict keys and values, list items) redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_data(k): redact_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_data(v) for v in value)
    return value


class RedactingFilter(logging.Filter):
    """Rewrites the record in place (every later handler sees the redacted text)."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string: the handler reports it, unchanged
            message = None
        if message is not None and (clean := redact(message)) != message:
            record.msg, record.args = clean, None
        if record.exc_info:
            # Formatters use exc_text when it is set: the traceback is formatted once, here.
            record.exc_text = record.exc_text or self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def sentry_before_send(event: dict, hint: dict | None = None) -> dict:
    """For ``sentry_sdk.init(before_send=..., before_send_transaction=..., before_send_log=...)``:
    the exception values, frame variables, breadcrumbs, request data and span descriptions."""
    return redact_data(event)


def install_excepthooks() -> None:
    """Tracebacks Python prints itself (no logging involved) are redacted too."""
    if getattr(sys.excepthook, "redacts", False):
        return

    def excepthook(exc_type, exc, tb):
        sys.stderr.write(redact("".join(traceback.format_exception(exc_type, exc, tb))))

    def thread_excepthook(args):
        if args.exc_type is SystemExit:
            return
        where = f"Exception in thread {args.thread.name if args.thread else '?'}:\n"
        text = "".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback))
        sys.stderr.write(redact(where + text))

    excepthook.redacts = True
    sys.excepthook = excepthook
    threading.excepthook = thread_excepthook
