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


def start_runbot(api_url: str, **extra_env) -> subprocess.Popen:
    """``manage.py runbot`` in a process of its own, talking to the Bot API at ``api_url``."""
    env = subprocess_env(**{"TELEGRAM_API_URL": api_url, "BOT_TOKEN": "424242:acceptance-token",
                            "TELEGRAM_POLL_TIMEOUT": 1, "REDIS_URL": settings.REDIS_URL, **extra_env})
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
    from standins.telegram import SandboxServer

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


SECRET_TOKEN = "424242:never-print-this-secret"


class _AnswersFiveHundred:
    """A Bot API server in trouble: every request gets a 500 whose page repeats the URL (token included)."""

    def __init__(self):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802
                server.requests += 1
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = f"<h1>500 Internal Server Error</h1> while serving {self.path}".encode()
                self.send_response(500)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def stop(self):
        self.http.shutdown()
        self.http.server_close()


def _closed_port_url() -> str:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there any more: connections are refused


def _runbot_output(api_url: str, ready) -> str:
    """Everything runbot prints (stdout and stderr, DEBUG logs included) until ``ready()`` and a SIGTERM."""
    process = start_runbot(api_url, BOT_TOKEN=SECRET_TOKEN, LOG_LEVEL="DEBUG")
    try:
        deadline = time.monotonic() + 20
        while not ready() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return output


@pytest.mark.parametrize("bot_api", ["dead", "answers 500"])
def test_the_bot_token_never_appears_in_runbot_output(bot_api):
    from genbot.redaction import PLACEHOLDER

    secret = SECRET_TOKEN.split(":")[1]
    if bot_api == "dead":
        output = _runbot_output(_closed_port_url(), ready=lambda: time.sleep(2) or True)
        assert "Connection refused" in output  # requests' error names the URL: /bot<token>/...
    else:
        server = _AnswersFiveHundred()
        try:
            output = _runbot_output(server.url, ready=lambda: server.requests >= 3)
        finally:
            server.stop()
        assert "500 Internal Server Error" in output  # telebot's error quotes the page, which quotes the URL
    assert secret not in output
    # The URLs with the token were printed, scrubbed (so this test sees a leak when there is one).
    assert f"/bot{PLACEHOLDER}" in output or f"/bot424242:{PLACEHOLDER}" in output
