"""POST /webhook/yookassa: the body is never trusted; a payment credits exactly once."""
import json
import logging

import pytest
import requests

from billing import selectors
from billing.models import Transfer
from payments import services
from payments.models import Payment, PaymentStatus
from payments.services import yookassa as yookassa_services
from payments.signals import payment_canceled, payment_succeeded
from tests.helpers import make_customer, run_concurrently

WEBHOOK = "/webhook/yookassa"
YOOKASSA_IP = "185.71.76.10"


def notify(client, stub, event, payment_id, *, ip=YOOKASSA_IP, **extra):
    obj = dict(stub.payments[payment_id]) if payment_id in stub.payments else {"id": payment_id}
    body = json.dumps(stub.notification(event, obj))
    return client.post(WEBHOOK, body, content_type="application/json", REMOTE_ADDR=ip, **extra)


def topup(amount=50_000):
    customer = make_customer()
    return customer, services.create_topup(customer=customer, amount=amount, provider="yookassa")


def credits_for(payment):
    return Transfer.objects.filter(idempotency_key=f"yookassa:{payment.provider_payment_id}").count()


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_identical_succeeded_notifications_credit_once(live_stub, live_server, books_balance):
    customer, payment = topup(30_000)
    live_stub.mark_succeeded(payment.provider_payment_id, notify=False)
    body = live_stub.notification("payment.succeeded", live_stub.payments[payment.provider_payment_id])

    def send(_i):
        return requests.post(f"{live_server.url}{WEBHOOK}", json=body, timeout=60).status_code

    results = run_concurrently(send, 20)
    assert results == [("ok", 200)] * 20
    assert selectors.get_balance(customer) == 30_000
    assert credits_for(payment) == 1
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.SUCCEEDED
    books_balance()


@pytest.mark.django_db
def test_succeeded_then_canceled_notification_stays_succeeded(client, yookassa_stub, books_balance):
    customer, payment = topup()
    yookassa_stub.mark_succeeded(payment.provider_payment_id, notify=False)
    assert notify(client, yookassa_stub, "payment.succeeded", payment.provider_payment_id).status_code == 200
    # A forged or reordered "canceled" after the money arrived changes nothing.
    assert notify(client, yookassa_stub, "payment.canceled", payment.provider_payment_id).status_code == 200
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert selectors.get_balance(customer) == 50_000
    books_balance()


@pytest.mark.django_db
def test_canceled_notification_first_then_succeeded_still_credits_what_the_api_says(client, yookassa_stub):
    customer, payment = topup()
    yookassa_stub.mark_succeeded(payment.provider_payment_id, notify=False)
    # The body says canceled; the API says succeeded: the API wins.
    assert notify(client, yookassa_stub, "payment.canceled", payment.provider_payment_id).status_code == 200
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert selectors.get_balance(customer) == 50_000


@pytest.mark.django_db
def test_notification_says_succeeded_but_api_says_pending_credits_nothing(client, yookassa_stub):
    customer, payment = topup()
    forged = dict(yookassa_stub.payments[payment.provider_payment_id], status="succeeded", paid=True)
    response = client.post(
        WEBHOOK, json.dumps(yookassa_stub.notification("payment.succeeded", forged)),
        content_type="application/json", REMOTE_ADDR=YOOKASSA_IP,
    )
    assert response.status_code == 200
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING
    assert selectors.get_balance(customer) == 0


@pytest.mark.django_db
@pytest.mark.parametrize("ip", ["203.0.113.7", "185.71.76.32", "2001:db8::1"])
def test_sender_outside_the_published_ranges_gets_403_and_no_credit(client, yookassa_stub, ip):
    customer, payment = topup()
    yookassa_stub.mark_succeeded(payment.provider_payment_id, notify=False)
    assert notify(client, yookassa_stub, "payment.succeeded", payment.provider_payment_id, ip=ip).status_code == 403
    assert selectors.get_balance(customer) == 0
    assert yookassa_stub.calls[("GET", "/v3/payments")] == 0


@pytest.mark.django_db
def test_forged_x_forwarded_for_is_ignored_without_trusted_proxies(client, yookassa_stub):
    customer, payment = topup()
    yookassa_stub.mark_succeeded(payment.provider_payment_id, notify=False)
    response = notify(client, yookassa_stub, "payment.succeeded", payment.provider_payment_id,
                      ip="203.0.113.7", HTTP_X_FORWARDED_FOR=YOOKASSA_IP)
    assert response.status_code == 403
    assert selectors.get_balance(customer) == 0


@pytest.mark.django_db
def test_trusted_proxy_count_takes_the_hop_our_proxy_saw(client, yookassa_stub, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    customer, payment = topup()
    yookassa_stub.mark_succeeded(payment.provider_payment_id, notify=False)
    pid = payment.provider_payment_id
    # The sender put a YooKassa address in front; our proxy appended the real one.
    forged = notify(client, yookassa_stub, "payment.succeeded", pid, ip="10.0.0.2",
                    HTTP_X_FORWARDED_FOR=f"{YOOKASSA_IP}, 203.0.113.7")
    assert forged.status_code == 403
    assert selectors.get_balance(customer) == 0
    real = notify(client, yookassa_stub, "payment.succeeded", pid, ip="10.0.0.2",
                  HTTP_X_FORWARDED_FOR=f"198.51.100.1, {YOOKASSA_IP}")
    assert real.status_code == 200
    assert selectors.get_balance(customer) == 50_000


@pytest.mark.django_db
def test_amount_mismatch_credits_nothing_and_logs_an_error(client, yookassa_stub, caplog):
    customer, payment = topup(50_000)
    yookassa_stub.mark_succeeded(payment.provider_payment_id, notify=False)
    yookassa_stub.update_payment(payment.provider_payment_id, amount={"value": "1.00", "currency": "RUB"})
    with caplog.at_level(logging.ERROR, logger="payments.services"):
        response = notify(client, yookassa_stub, "payment.succeeded", payment.provider_payment_id)
    assert response.status_code == 200
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING
    assert selectors.get_balance(customer) == 0
    assert any(r.levelno == logging.ERROR and "does not match" in r.getMessage() for r in caplog.records)


@pytest.mark.django_db
def test_currency_or_metadata_mismatch_credits_nothing(client, yookassa_stub):
    customer, payment = topup(50_000)
    pid = payment.provider_payment_id
    yookassa_stub.mark_succeeded(pid, notify=False)
    yookassa_stub.update_payment(pid, amount={"value": "500.00", "currency": "USD"})
    notify(client, yookassa_stub, "payment.succeeded", pid)
    yookassa_stub.update_payment(pid, amount={"value": "500.00", "currency": "RUB"}, metadata={"payment_id": "999999"})
    notify(client, yookassa_stub, "payment.succeeded", pid)
    assert selectors.get_balance(customer) == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'{"type": "notification", "object": {"id": "x"}}',
        b'{"type": "notification", "event": "payment.succeeded"}',
        b'{"type": "notification", "event": "payment.succeeded", "object": {"status": "succeeded"}}',
        b'{"type": "other", "event": "payment.succeeded", "object": {"id": "x"}}',
        "\u00ff".encode("latin-1"),
    ],
)
def test_malformed_body_gets_400_and_changes_nothing(client, yookassa_stub, body):
    customer, payment = topup()
    yookassa_stub.mark_succeeded(payment.provider_payment_id, notify=False)
    response = client.post(WEBHOOK, body, content_type="application/json", REMOTE_ADDR=YOOKASSA_IP)
    assert response.status_code == 400
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING
    assert selectors.get_balance(customer) == 0


@pytest.mark.django_db
def test_unknown_event_answers_200_and_logs(client, yookassa_stub, caplog):
    _customer, payment = topup()
    with caplog.at_level(logging.INFO, logger="payments.services"):
        response = notify(client, yookassa_stub, "payout.succeeded", payment.provider_payment_id)
    assert response.status_code == 200
    assert "payout.succeeded" in caplog.text
    assert yookassa_stub.calls[("GET", "/v3/payments")] == 0


@pytest.mark.django_db
def test_notification_about_a_payment_that_is_not_ours_answers_200_and_changes_nothing(client, yookassa_stub):
    response = notify(client, yookassa_stub, "payment.succeeded", "2f1c5a3e-000f-5000-8000-1f1f1f1f1f1f")
    assert response.status_code == 200
    assert not Transfer.objects.exists()


@pytest.mark.django_db
def test_repeat_for_a_final_payment_answers_200_without_calling_the_api(client, yookassa_stub):
    customer, payment = topup()
    yookassa_stub.mark_succeeded(payment.provider_payment_id, notify=False)
    notify(client, yookassa_stub, "payment.succeeded", payment.provider_payment_id)
    calls = yookassa_stub.calls[("GET", "/v3/payments")]
    assert calls == 1
    for _ in range(3):
        assert notify(client, yookassa_stub, "payment.succeeded", payment.provider_payment_id).status_code == 200
    assert yookassa_stub.calls[("GET", "/v3/payments")] == calls
    assert selectors.get_balance(customer) == 50_000


@pytest.mark.django_db
def test_api_outage_answers_503_so_yookassa_retries_and_the_retry_credits(client, yookassa_stub):
    customer, payment = topup()
    yookassa_stub.mark_succeeded(payment.provider_payment_id, notify=False)
    yookassa_stub.fail_next(1, status=500)
    assert notify(client, yookassa_stub, "payment.succeeded", payment.provider_payment_id).status_code == 503
    assert selectors.get_balance(customer) == 0
    assert notify(client, yookassa_stub, "payment.succeeded", payment.provider_payment_id).status_code == 200
    assert selectors.get_balance(customer) == 50_000


@pytest.mark.django_db
def test_canceled_payment_is_marked_canceled_and_announced(client, yookassa_stub, django_capture_on_commit_callbacks):
    customer, payment = topup()
    yookassa_stub.mark_canceled(payment.provider_payment_id, notify=False)
    received = []
    payment_canceled.connect(lambda sender, payment, **kw: received.append(payment.pk), weak=False, dispatch_uid="t1")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            assert notify(client, yookassa_stub, "payment.canceled", payment.provider_payment_id).status_code == 200
    finally:
        payment_canceled.disconnect(dispatch_uid="t1")
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.CANCELED
    assert payment.cancellation_reason == "expired_on_confirmation"
    assert received == [payment.pk]
    assert selectors.get_balance(customer) == 0


@pytest.mark.django_db
def test_payment_succeeded_signal_is_sent_once_inside_the_transaction(client, yookassa_stub, django_capture_on_commit_callbacks):
    _customer, payment = topup()
    yookassa_stub.mark_succeeded(payment.provider_payment_id, notify=False)
    received = []
    payment_succeeded.connect(lambda sender, payment, **kw: received.append(payment.pk), weak=False, dispatch_uid="t2")
    try:
        with django_capture_on_commit_callbacks(execute=False):
            for _ in range(3):
                notify(client, yookassa_stub, "payment.succeeded", payment.provider_payment_id)
            assert received == [payment.pk]  # announced inside the transaction, before any commit callback
    finally:
        payment_succeeded.disconnect(dispatch_uid="t2")
    assert received == [payment.pk]


@pytest.mark.django_db(transaction=True)
def test_stub_checkout_page_pay_notifies_the_webhook_and_redirects_to_the_return_url(live_stub, settings):
    settings.YOOKASSA_RETURN_URL = "https://t.me/genbot_test_bot"
    customer, payment = topup(30_000)
    page = requests.get(payment.confirmation_url, timeout=10)
    assert page.status_code == 200 and "Pay" in page.text and "300.00" in page.text
    done = requests.post(payment.confirmation_url, data={"action": "pay"}, allow_redirects=False, timeout=30)
    assert done.status_code == 303
    assert done.headers["Location"] == "https://t.me/genbot_test_bot"
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert selectors.get_balance(customer) == 30_000


@pytest.mark.django_db(transaction=True)
def test_stub_checkout_page_cancel_marks_the_payment_canceled(live_stub):
    customer, payment = topup(30_000)
    done = requests.post(payment.confirmation_url, data={"action": "cancel"}, allow_redirects=False, timeout=30)
    assert done.status_code == 303
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.CANCELED
    assert selectors.get_balance(customer) == 0


@pytest.mark.django_db
def test_a_failing_receiver_neither_fails_the_webhook_nor_undoes_the_credit(client, yookassa_stub, caplog,
                                                                            django_capture_on_commit_callbacks):
    customer, payment = topup()
    yookassa_stub.mark_succeeded(payment.provider_payment_id, notify=False)

    def broken(sender, payment, **kwargs):
        raise RuntimeError("the bot is down")

    payment_succeeded.connect(broken, weak=False, dispatch_uid="t3")
    try:
        with caplog.at_level(logging.ERROR), django_capture_on_commit_callbacks(execute=True):
            response = notify(client, yookassa_stub, "payment.succeeded", payment.provider_payment_id)
    finally:
        payment_succeeded.disconnect(dispatch_uid="t3")
    assert response.status_code == 200
    assert selectors.get_balance(customer) == 50_000
    assert "failed" in caplog.text


def _statements(queries):
    """What was run, less transaction control (TestCase turns the durable block into a savepoint)."""
    control = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT", "BEGIN", "COMMIT")
    return [q["sql"] for q in queries if not q["sql"].lstrip().upper().startswith(control)]


@pytest.mark.django_db
def test_a_first_notification_is_one_read_one_api_call_and_the_credit_a_repeat_one_read_a_known_one_none(
    client, yookassa_stub, django_capture_on_commit_callbacks, monkeypatch
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from telegram_bot.models import OutboxMessage

    customer, payment = topup()
    yookassa_stub.mark_succeeded(payment.provider_payment_id, notify=False)
    with CaptureQueriesContext(connection) as first, django_capture_on_commit_callbacks(execute=True):
        assert notify(client, yookassa_stub, "payment.succeeded", payment.provider_payment_id).status_code == 200
    assert yookassa_stub.calls[("GET", "/v3/payments")] == 1
    if connection.vendor == "postgresql":
        # read; credit (one statement); conditional UPDATE; the bot's message (one INSERT, no read);
        # the bot's look for a quote that waited for this top-up (one read of the chat's dialogue)
        # promotions: what decides the payment's bonuses (one read; none apply here)
        # + the bot's read of the payer's bonuses (one, for the message and the waiting quote)
        assert len(_statements(first.captured_queries)) == 7, "\n".join(q[:90] for q in _statements(first.captured_queries))
    message = OutboxMessage.objects.get(chat_id=customer.telegram_id)
    assert "500" in message.params["text"]  # the balance right after the credit, 500 roubles

    # Another process has not seen it: one read of the payment answers, no API call.
    monkeypatch.setattr(yookassa_services, "_final_yookassa_payments", yookassa_services._FinalPayments())
    with CaptureQueriesContext(connection) as repeat:
        assert notify(client, yookassa_stub, "payment.succeeded", payment.provider_payment_id).status_code == 200
    assert len(repeat.captured_queries) == 1
    # This process has: nothing at all.
    with CaptureQueriesContext(connection) as known:
        assert notify(client, yookassa_stub, "payment.waiting_for_capture", payment.provider_payment_id).status_code == 200
    assert len(known.captured_queries) == 0
    assert yookassa_stub.calls[("GET", "/v3/payments")] == 1
    assert credits_for(payment) == 1
    assert selectors.get_balance(customer) == 50_000


@pytest.mark.django_db
def test_json_nested_too_deep_is_malformed_not_a_server_error(client, yookassa_stub):
    body = b'{"type": "notification", "event": "payment.succeeded", "object": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = client.post(WEBHOOK, body, content_type="application/json", REMOTE_ADDR=YOOKASSA_IP)
    assert response.status_code == 400


@pytest.mark.django_db
def test_the_benchmarks_baseline_view_is_served_by_their_url_conf_only(client, settings):
    assert client.get("/bench/ping").status_code == 404  # not by the product
    settings.ROOT_URLCONF = "bench.urls"  # what bench.settings sets for bench/webhook.py's server
    assert client.get("/bench/ping").content == b"ok"
    # ...beside every URL of the product's.
    assert client.post(WEBHOOK, b"{}", content_type="application/json", REMOTE_ADDR="10.0.0.1").status_code == 403
