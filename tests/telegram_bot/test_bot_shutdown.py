"""``manage.py runbot`` stopped (SIGTERM) while a Stars payment is being handled: the payment is
neither lost nor doubled, even when Telegram delivers the update again to the next run."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from django.conf import settings

from billing.models import Transfer
from billing.selectors import find_drift, get_balance
from payments import services as payments
from payments.models import Payment, PaymentStatus
from tests.helpers import make_customer, subprocess_env, wait_until
from tests.telegram_bot.conftest import new_chat_id

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


TOKEN = "424242:shutdown-token"


def start_bot(sandbox) -> subprocess.Popen:
    """A runbot process, returned once it is polling (its SIGTERM handler is in place by then)."""
    sandbox.state.tokens_seen.discard(TOKEN)
    env = subprocess_env(TELEGRAM_API_URL=sandbox.url, BOT_TOKEN=TOKEN, TELEGRAM_POLL_TIMEOUT=1)
    process = subprocess.Popen([sys.executable, "manage.py", "runbot"], cwd=settings.BASE_DIR, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_until(lambda: TOKEN in sandbox.state.tokens_seen or process.poll() is not None, timeout=60,
               message="runbot to reach the Bot API")
    return process


def stop_bot(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    return output


def test_sigterm_while_a_stars_payment_is_handled_credits_it_once_across_a_redelivery(sandbox):
    chat_id = new_chat_id()
    customer = make_customer(telegram_id=chat_id, language="en")
    payment = payments.create_stars_topup(customer=customer, stars=150)
    invoice = payments.build_stars_invoice(payment=payment)
    paid = {
        "message_id": 1, "date": int(time.time()), "chat": {"id": chat_id, "type": "private"},
        "from": sandbox.state.user(chat_id, language_code="en", first_name="Ann"),
        "successful_payment": {
            "currency": "XTR", "total_amount": 150, "invoice_payload": invoice.payload,
            "telegram_payment_charge_id": "tg-charge-shutdown", "provider_payment_charge_id": "",
        },
    }

    first = start_bot(sandbox)
    sandbox.state.push_raw_update({"message": paid})
    time.sleep(0.5)  # the update is in flight: fetched, being handled, or about to be
    stop_bot(first)
    payment.refresh_from_db()
    assert payment.status in (PaymentStatus.PENDING, PaymentStatus.SUCCEEDED)  # never anything else

    second = start_bot(sandbox)  # Telegram delivers the update again (or for the first time)
    sandbox.state.push_raw_update({"message": paid})
    deadline = time.monotonic() + 30
    while Payment.objects.get(pk=payment.pk).status != PaymentStatus.SUCCEEDED and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1)  # let a second handling, if any, finish before counting
    output = stop_bot(second)

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED, output
    assert Transfer.objects.filter(idempotency_key="stars:tg-charge-shutdown").count() == 1
    assert get_balance(customer) == payment.amount
    assert find_drift() == []
