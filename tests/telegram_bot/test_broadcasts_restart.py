"""A broadcast to 1,000 sandbox chats whose delivery process is SIGKILLed half-way and started
again: every chat gets the message exactly once, except rows reported in doubt (at most once).

The delivery loop runs in real processes (``manage.py runbot --delivery-only``) against the
sandbox in this process; the flood limits are raised for the test through the environment the
processes read (the sandbox's own limits are off), and a dead loop's claims are taken back after
3 seconds instead of 2 minutes.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from django.conf import settings
from django.db.models import Count

from billing.models import Customer
from standins.telegram import SandboxServer
from telegram_bot import broadcasts
from telegram_bot.models import Broadcast, BroadcastStatus, OutboxMessage, OutboxStatus
from tests.helpers import subprocess_env, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

CHATS = 1000
SENDER_THREADS = 16  # broadcast rows in flight: at most half of them


def start_delivery(api_url: str, token: str) -> subprocess.Popen:
    env = subprocess_env(
        TELEGRAM_API_URL=api_url, BOT_TOKEN=token, REDIS_URL=settings.REDIS_URL,
        TELEGRAM_SEND_GLOBAL=1000, BOT_BROADCAST_PER_SECOND=250, TELEGRAM_SENDER_THREADS=SENDER_THREADS,
        BOT_OUTBOX_STALE_CLAIM=3,
    )
    return subprocess.Popen([sys.executable, "manage.py", "runbot", "--delivery-only"], cwd=settings.BASE_DIR, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_a_broadcast_killed_half_way_and_restarted_reaches_each_chat_exactly_once():
    sandbox = SandboxServer(port=0, flood_limits=False).start()
    token = f"{os.getpid()}{uuid.uuid4().int % 10**6}:restart-test"
    base = 880_000_000_000 + uuid.uuid4().int % 10**8 * 1000
    Customer.objects.bulk_create([Customer(telegram_id=base + i, language="en") for i in range(CHATS)])
    broadcast = broadcasts.create_broadcast(acting_user=None, text="Exactly once, please", language="en")
    processes = []
    try:
        started = time.monotonic()
        broadcasts.start_broadcast(acting_user=None, broadcast=broadcast)
        first = start_delivery(sandbox.url, token)
        processes.append(first)
        wait_until(lambda: sandbox.state.stats["messages"] >= CHATS // 2, timeout=60, interval=0.01,
                   message="half of the chats to receive it")
        killed_after = time.monotonic() - started
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        at_kill = sandbox.state.stats["messages"]
        claimed = OutboxMessage.objects.filter(broadcast=broadcast, status__in=(OutboxStatus.SENDING, OutboxStatus.ON_WIRE))
        left_claimed = dict(claimed.values_list("status").annotate(n=Count("id")).order_by())
        assert 0 < at_kill < CHATS, at_kill

        second = start_delivery(sandbox.url, token)
        processes.append(second)
        restarted = time.monotonic()
        wait_until(lambda: sandbox.state.stats["messages"] > at_kill, timeout=60, interval=0.01)
        resumed_after = time.monotonic() - restarted
        wait_until(lambda: Broadcast.objects.get(pk=broadcast.pk).status == BroadcastStatus.DONE, timeout=90, interval=0.1,
                   message="the broadcast to finish after the restart")
        seconds = time.monotonic() - started
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            errors = process.stderr.read()
            if errors.strip():
                print(f"delivery process {process.pid} said:\n{errors[-3000:]}")
        sandbox.stop()

    result = broadcasts.figures(broadcast)
    in_doubt = set(OutboxMessage.objects.filter(broadcast=broadcast, status=OutboxStatus.IN_DOUBT)
                   .values_list("chat_id", flat=True))
    received = {base + i: len(sandbox.state.bot_messages(base + i)) for i in range(CHATS)}
    twice = {chat: n for chat, n in received.items() if n > 1}
    missing = [chat for chat, n in received.items() if n == 0 and chat not in in_doubt]
    print(f"\n1,000-chat broadcast, SIGKILL at {at_kill} received (rows left claimed: {left_claimed}): "
          f"{result.line()}; killed after {killed_after:.1f} s, the new process sent again after {resumed_after:.1f} s, "
          f"{seconds:.1f} s in all, {result.sent / seconds:.0f} messages/s")
    reasons = list(OutboxMessage.objects.filter(broadcast=broadcast, status=OutboxStatus.IN_DOUBT).values_list("last_error", flat=True))
    print("in doubt because:", sorted(set(reasons)))
    assert twice == {}, twice
    assert missing == [], missing[:20]
    assert all(received[chat] <= 1 for chat in in_doubt)
    assert result.in_doubt == len(in_doubt) <= SENDER_THREADS // 2
    assert (result.audience, result.queued, result.failed, result.blocked, result.canceled) == (CHATS, 0, 0, 0, 0)
    assert result.sent + result.in_doubt == CHATS
    assert sum(received.values()) == sandbox.state.stats["messages"]
