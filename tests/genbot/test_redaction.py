"""Secrets (above all the bot token, which telebot puts in every URL) are scrubbed from log lines,
tracebacks and Sentry events. runbot's whole output: tests/telegram_bot/test_runbot_command.py."""
import logging
import threading
from http.server import ThreadingHTTPServer

import pytest

from genbot.redaction import PLACEHOLDER, RedactingFilter, redact, sentry_before_send
from tests.genbot.test_errors_and_logs import Collector, run_python

TOKEN = "777000:AAE-secret-part-of-the-token"
URL = f"https://api.telegram.org/bot{TOKEN}/getUpdates"


@pytest.fixture
def secrets(settings):
    settings.BOT_TOKEN = TOKEN
    settings.TELEGRAM_WEBHOOK_SECRET = "webhook-secret-header-value"
    settings.YOOKASSA_SECRET_KEY = "live_yookassa-secret-key"
    settings.KLING_API_KEY = "kling-access-key:kling-secret-key"
    return settings


def test_redact_replaces_every_secret_and_the_tokens_secret_half_but_not_the_public_bot_id(secrets):
    text = redact(f"{URL} /bot777000%3AAAE-secret-part-of-the-token/ webhook-secret-header-value "
                  "live_yookassa-secret-key kling-secret-key")
    assert text == (f"https://api.telegram.org/bot{PLACEHOLDER}/getUpdates /bot777000%3A{PLACEHOLDER}/ "
                    f"{PLACEHOLDER} {PLACEHOLDER} {PLACEHOLDER}")


def test_redact_leaves_text_alone_without_secrets_and_ignores_the_empty_default(settings):
    settings.BOT_TOKEN = ""
    settings.TELEGRAM_WEBHOOK_SECRET = ""
    assert redact("polling https://api.telegram.org/bot/getUpdates") == "polling https://api.telegram.org/bot/getUpdates"


def test_sentry_before_send_scrubs_exception_values_frames_breadcrumbs_request_and_spans(secrets):
    event = {
        "message": f"polling failed for {URL}",
        "exception": {"values": [{
            "type": "ConnectionError", "value": f"Max retries exceeded with url: /bot{TOKEN}/getMe",
            "stacktrace": {"frames": [{"function": "_make_request", "vars": {"url": f"'{URL}'", "token": f"'{TOKEN}'"}}]},
        }]},
        "breadcrumbs": {"values": [{"category": "httplib", "data": {"url": URL, "method": "POST"}}]},
        "request": {"url": "https://bot.example.com/telegram/webhook/",
                    "headers": {"X-Telegram-Bot-Api-Secret-Token": "webhook-secret-header-value"}},
        "spans": [{"op": "http.client", "description": f"POST {URL}"}],
        "extra": {"attempt": 3, "ok": False},
    }
    scrubbed = sentry_before_send(event, {})
    flat = repr(scrubbed)
    assert "AAE-secret-part-of-the-token" not in flat and "webhook-secret-header-value" not in flat
    assert scrubbed["exception"]["values"][0]["value"] == f"Max retries exceeded with url: /bot{PLACEHOLDER}/getMe"
    assert scrubbed["breadcrumbs"]["values"][0]["data"] == {"url": URL.replace(TOKEN, PLACEHOLDER), "method": "POST"}
    assert scrubbed["request"]["headers"]["X-Telegram-Bot-Api-Secret-Token"] == PLACEHOLDER
    assert scrubbed["extra"] == {"attempt": 3, "ok": False}  # other values untouched


def test_the_log_filter_scrubs_the_message_its_arguments_and_the_traceback(secrets):
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(self.format(record))

    handler = Keep()
    handler.addFilter(RedactingFilter())
    log = logging.getLogger("tests.redaction")
    log.addHandler(handler)
    try:
        try:
            raise ConnectionError(f"Max retries exceeded with url: /bot{TOKEN}/getMe")
        except ConnectionError:
            log.exception("request to %s failed", URL)
        log.warning("header %s", "webhook-secret-header-value", stack_info=True)
    finally:
        log.removeHandler(handler)
    text = "\n".join(records)
    assert "AAE-secret-part-of-the-token" not in text and "webhook-secret-header-value" not in text
    assert f"request to https://api.telegram.org/bot{PLACEHOLDER}/getUpdates failed" in text
    assert f"ConnectionError: Max retries exceeded with url: /bot{PLACEHOLDER}/getMe" in text
    assert f"header {PLACEHOLDER}" in text


def test_the_settings_install_the_filter_on_every_handler_and_the_hook_in_sentry():
    """A real process: a view error whose message and frame hold the token, logged and sent to Sentry."""
    code = """
import django, logging, sentry_sdk
django.setup()
from django.test import Client, override_settings
from django.urls import path

def boom(request):
    url = "https://api.telegram.org/bot777000:AAE-secret-part-of-the-token/sendMessage"
    raise RuntimeError("request to " + url + " failed")

urlpatterns = [path("boom", boom)]
with override_settings(ROOT_URLCONF=__name__):
    Client(raise_request_exception=False).get("/boom")
sentry_sdk.flush(timeout=5)
"""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Collector.bodies = []
    try:
        done = run_python(code, SENTRY_DSN=f"http://publickey@127.0.0.1:{server.server_port}/1", BOT_TOKEN=TOKEN)
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 0, done.stderr
    sent = b"\n".join(Collector.bodies).decode("utf-8", "replace")
    for output in (sent, done.stderr):
        assert "AAE-secret-part-of-the-token" not in output
        assert f"bot{PLACEHOLDER}/sendMessage" in output


def test_an_uncaught_exception_prints_a_scrubbed_traceback():
    code = """
import django, threading
django.setup()
t = threading.Thread(target=lambda: (_ for _ in ()).throw(RuntimeError("in a thread: bot777000:AAE-secret-part-of-the-token")))
t.start(); t.join()
raise RuntimeError("main: bot777000:AAE-secret-part-of-the-token")
"""
    done = run_python(code, BOT_TOKEN=TOKEN)
    assert done.returncode == 1
    assert "AAE-secret-part-of-the-token" not in done.stderr
    assert f"in a thread: bot{PLACEHOLDER}" in done.stderr and f"main: bot{PLACEHOLDER}" in done.stderr
