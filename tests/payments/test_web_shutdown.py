"""SIGTERM to gunicorn, run as deployed (deploy/gunicorn.conf.py), while a payment notification is
being handled: the request finishes, the payment is credited once, and the server exits."""
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from billing.selectors import find_drift, get_balance
from billing.models import Transfer
from payments import services
from payments.models import PaymentStatus
from tests.helpers import free_port, make_customer, subprocess_env, wait_until

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db(transaction=True)


def test_sigterm_mid_webhook_finishes_the_request_and_credits_once(yookassa_stub):
    customer = make_customer()
    payment = services.create_topup(customer=customer, amount=50_000, provider="yookassa")
    yookassa_stub.mark_succeeded(payment.provider_payment_id, notify=False)
    api_answered = threading.Event()
    plain = yookassa_stub.handle_api

    def slow_api(method, path, headers, body):
        if method == "GET":
            time.sleep(1.5)  # the webhook is mid-request while the server is told to stop
        try:
            return plain(method, path, headers, body)
        finally:
            api_answered.set()

    yookassa_stub.handle_api = slow_api
    port = free_port()
    env = subprocess_env(
        YOOKASSA_SHOP_ID=yookassa_stub.shop_id, YOOKASSA_SECRET_KEY=yookassa_stub.secret_key,
        YOOKASSA_API_URL=yookassa_stub.api_url, YOOKASSA_ALLOWED_IPS="127.0.0.1", TRUSTED_PROXY_COUNT=0,
        WEB_CONCURRENCY=1,
    )
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "genbot.wsgi", "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
         "-b", f"127.0.0.1:{port}", "--graceful-timeout", "20"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        wait_until(lambda: _healthy(port), timeout=60, message="gunicorn to serve")
        notification = yookassa_stub.notification("payment.succeeded", yookassa_stub.payments[payment.provider_payment_id])
        answers = []
        sender = threading.Thread(target=lambda: answers.append(
            requests.post(f"http://127.0.0.1:{port}/webhook/yookassa", json=notification, timeout=30).status_code))
        sender.start()
        time.sleep(0.5)
        os.killpg(web.pid, signal.SIGTERM)
        sender.join(timeout=30)
        assert web.wait(timeout=30) == 0
    finally:
        if web.poll() is None:
            os.killpg(web.pid, signal.SIGKILL)
        output = web.communicate(timeout=10)[0].decode(errors="replace")
    assert api_answered.is_set()
    assert answers == [200], output
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert get_balance(customer) == 50_000
    assert Transfer.objects.filter(idempotency_key=f"yookassa:{payment.provider_payment_id}").count() == 1
    assert find_drift() == []


def _healthy(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).ok
    except requests.RequestException:
        return False
