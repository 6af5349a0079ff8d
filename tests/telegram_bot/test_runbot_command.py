"""``manage.py runbot`` as a process: reaches the Bot API named by TELEGRAM_API_URL with BOT_TOKEN,
answers, and stops cleanly (exit 0) on SIGTERM."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from django.conf import settings
from django.db import connection

from billing.models import Customer

from tests.telegram_bot.conftest import new_chat_id

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]


def _database_env() -> dict:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return {"DATABASE_PATH": db["NAME"]}
    user = db.get("USER") or "postgres"
    auth = f"{user}:{db['PASSWORD']}" if db.get("PASSWORD") else user
    return {"DATABASE_URL": f"postgres://{auth}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"}


def test_runbot_answers_through_the_configured_bot_api_and_exits_cleanly_on_sigterm(sandbox):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(_database_env())
    env.update(TELEGRAM_API_URL=sandbox.url, BOT_TOKEN="424242:acceptance-token", TELEGRAM_POLL_TIMEOUT="1",
               REDIS_URL=settings.REDIS_URL)
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runbot"], cwd=settings.BASE_DIR, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
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
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(_database_env())
    env.update(TELEGRAM_API_URL=sandbox.url, BOT_TOKEN="424242:acceptance-token", TELEGRAM_POLL_TIMEOUT="1",
               REDIS_URL=settings.REDIS_URL)
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runbot"], cwd=settings.BASE_DIR, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
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
