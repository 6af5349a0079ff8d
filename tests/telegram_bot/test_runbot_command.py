"""``manage.py runbot`` as a process: reaches the Bot API named by TELEGRAM_API_URL with BOT_TOKEN,
answers, and stops cleanly (exit 0) on SIGTERM."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from django.conf import settings

from billing.models import Customer

from tests.helpers import subprocess_env
from tests.telegram_bot.conftest import new_chat_id

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]


def start_runbot(api_url: str) -> subprocess.Popen:
    """``manage.py runbot`` in a process of its own, talking to the Bot API at ``api_url``."""
    env = subprocess_env(TELEGRAM_API_URL=api_url, BOT_TOKEN="424242:acceptance-token", TELEGRAM_POLL_TIMEOUT=1,
                         REDIS_URL=settings.REDIS_URL)
    return subprocess.Popen(
        [sys.executable, "manage.py", "runbot"], cwd=settings.BASE_DIR, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def test_runbot_answers_through_the_configured_bot_api_and_exits_cleanly_on_sigterm(sandbox):
    process = start_runbot(sandbox.url)
    try:
        chat_id = new_chat_id()
        sandbox.state.user(chat_id, language_code="en", first_name="Acceptance")
        sandbox.state.user_sends(chat_id, "/start")
        deadline = time.monotonic() + 30
        while not sandbox.state.bot_messages(chat_id) and time.monotonic() < deadline:
            time.sleep(0.1)
        replies = sandbox.state.bot_messages(chat_id)
        assert replies and "Hello, Acceptance" in replies[0]["text"]
        assert "424242:acceptance-token" in sandbox.state.tokens_seen
        assert Customer.objects.filter(telegram_id=chat_id).exists()
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
        assert process.returncode == 0, output
        assert "bot stopped" in output
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_runbot_stops_promptly_on_sigterm_even_when_the_bot_api_is_gone(settings):
    from telegram_bot.sandbox.server import SandboxServer

    sandbox = SandboxServer(port=0).start()
    process = start_runbot(sandbox.url)
    try:
        deadline = time.monotonic() + 20
        while sandbox.state.stats["requests"] < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        sandbox.stop()  # Telegram goes away; telebot starts backing off
        time.sleep(4)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
        assert process.returncode == 0, output
        assert time.monotonic() - started < 15
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
