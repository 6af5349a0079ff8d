"""The bot against the local Bot API sandbox (with Telegram's flood limits and real 429s).

(a) broadcast: one message to each of N sandbox chats through ``telegram_bot.sender.broadcast``
    (the one sender, 30 messages/s overall, ~1/s per chat). Prints messages/s and the number of
    429 answers received (must be 0).
(b) updates: U ``/balance`` updates from C chats pushed to the sandbox, consumed by the real bot
    loop (telebot long polling, middleware with the Redis rate limit, handler, outbox). Prints
    updates/s (first update pushed to last handler done) and p50/p99 handler latency
    (middleware start to handler end, measured by a middleware of the benchmark's own put
    before the bot's).
Last line:
    RESULT bot ratio=<broadcast msgs/s / 30> target=0.97 p99_ms=<p99> p99_target_ms=50

Runs on a fresh SQLite file by default (``--database-url postgres://...`` for PostgreSQL).
Usage: .venv/bin/python bench/bot.py [--chats 1000] [--updates 2000] [--update-chats 200]
"""
from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import threading
import time
from pathlib import Path

# DEBUG off refuses the development SECRET_KEY; any key will do for a benchmark (children inherit it).
os.environ.setdefault("SECRET_KEY", "bench-" + secrets.token_urlsafe(32))

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, int(round(share * len(ordered) + 0.5)) - 1))
    return ordered[index]


class Latencies:
    """Handler durations in seconds (a bounded list)."""

    def __init__(self, limit: int = 100_000):
        self.limit = limit
        self._lock = threading.Lock()
        self.values: list[float] = []

    def add(self, seconds: float) -> None:
        with self._lock:
            if len(self.values) < self.limit:
                self.values.append(seconds)


def measure_handlers(bot, latencies: Latencies) -> None:
    """Time every message from before the bot's own middleware to the end of its handler.

    telebot runs class middlewares' ``pre_process`` in list order and, after the handler, their
    ``post_process`` in the same order: the first one's post runs right after the handler. An
    update the bot's middleware cancels runs no handler and is not counted.
    """
    from telebot.handler_backends import BaseMiddleware

    class Timer(BaseMiddleware):
        update_types = ["message"]

        def pre_process(self, message, data):
            data["bench_started"] = time.perf_counter()

        def post_process(self, message, data, exception):
            latencies.add(time.perf_counter() - data["bench_started"])

    bot.middlewares.insert(0, Timer())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chats", type=int, default=1000)
    parser.add_argument("--updates", type=int, default=2000)
    parser.add_argument("--update-chats", type=int, default=200)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/6")
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="genbot-bench-bot-")
    if args.database_url:
        os.environ["DATABASE_URL"] = args.database_url
    else:
        os.environ.pop("DATABASE_URL", None)
        os.environ["DATABASE_PATH"] = os.path.join(workdir, "bench.sqlite3")
    os.environ["REDIS_URL"] = args.redis
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["TELEGRAM_POLL_TIMEOUT"] = "1"
    os.environ["MEDIA_ROOT"] = os.path.join(workdir, "media")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "genbot.settings")

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    # The sandbox runs in its own process, as Telegram would: its work does not share our GIL.
    import socket
    import subprocess

    import requests

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sandbox_process = subprocess.Popen(
        [sys.executable, "manage.py", "run_sandbox", "--port", str(port)], cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    sandbox_url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            requests.get(f"{sandbox_url}/sandbox/api/stats", timeout=1)
            break
        except requests.RequestException:
            time.sleep(0.1)
    settings.TELEGRAM_API_URL = sandbox_url

    def sandbox_stats() -> dict:
        return requests.get(f"{sandbox_url}/sandbox/api/stats", timeout=5).json()

    # --- (a) broadcast ------------------------------------------------------------------------
    from telegram_bot.sender import BotApi, Sender, broadcast

    sender = Sender(BotApi())
    base = int(time.time()) * 1000
    chat_ids = [base + i for i in range(args.chats)]
    result = broadcast(chat_ids, "📣 genbot news: videos are now 20% faster.", sender=sender)
    rate = result.messages_per_second
    sandbox_429 = sandbox_stats()["too_many_requests"]
    print(f"broadcast: {result.sent} sent to {args.chats} chats in {result.seconds:.2f}s = {rate:.2f} msgs/s; "
          f"429s received {result.too_many_requests} (sandbox answered {sandbox_429}); "
          f"blocked {result.blocked}, failed {result.failed}")

    # --- (b) /balance updates through the bot loop --------------------------------------------
    from telegram_bot.bot import build_bot
    from telegram_bot.delivery import OutboxDelivery
    from telegram_bot.runner import BotRunner

    latencies = Latencies()
    bot = build_bot()
    measure_handlers(bot, latencies)
    runner = BotRunner(bot=bot, poll_timeout=1)
    runner.delivery = OutboxDelivery()
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    time.sleep(1.0)  # polling has started
    users = [base + 10_000_000 + i for i in range(args.update_chats)]
    batch = [{"chat_id": users[i % len(users)], "text": "/balance", "language_code": "en", "first_name": "Bench"}
             for i in range(args.updates)]
    started = time.perf_counter()
    # One request: the sandbox process queues all the updates; the bot consumes them at its pace.
    requests.post(f"{sandbox_url}/sandbox/api/send_batch", json={"messages": batch}, timeout=60)
    deadline = time.monotonic() + 300
    while len(latencies.values) < args.updates and time.monotonic() < deadline:
        time.sleep(0.01)
    elapsed = time.perf_counter() - started
    handled = len(latencies.values)
    values_ms = [v * 1000 for v in latencies.values]
    p50, p99 = percentile(values_ms, 0.50), percentile(values_ms, 0.99)
    runner.stop()
    thread.join(60)
    from telegram_bot.models import OutboxMessage

    queued = OutboxMessage.objects.filter(chat_id__in=users).count()
    print(f"updates: {handled}/{args.updates} /balance updates from {len(users)} chats handled in {elapsed:.2f}s = "
          f"{handled / elapsed:.1f} updates/s; handler latency p50 {p50:.1f} ms, p99 {p99:.1f} ms "
          f"(target p99 <= 50 ms); {queued} replies in the outbox; database {django.db.connection.vendor}")
    sandbox_process.terminate()
    sandbox_process.wait(10)
    print(f"RESULT bot ratio={rate / 30:.3f} target=0.97 p99_ms={p99:.1f} p99_target_ms=50")


if __name__ == "__main__":
    main()
