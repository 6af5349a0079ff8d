"""payments.yookassa_client: the SDK on one kept-alive connection per thread, with a timeout."""
import socket
import threading
import time

import pytest

from payments import services, yookassa_client
from payments.exceptions import PaymentProviderUnavailable
from tests.helpers import make_customer

pytestmark = pytest.mark.django_db


def _paid_topup(stub):
    payment = services.create_topup(customer=make_customer(), amount=10_000, provider="yookassa")
    stub.mark_succeeded(payment.provider_payment_id, notify=False)
    return payment


def test_calls_from_one_thread_share_one_kept_alive_connection(yookassa_stub):
    payment = _paid_topup(yookassa_stub)  # a POST
    for _ in range(3):
        assert yookassa_client.fetch_payment(payment.provider_payment_id).status == "succeeded"
    assert yookassa_stub.calls[("GET", "/v3/payments")] == 3
    assert yookassa_stub.connections == 1


def test_each_thread_has_its_own_pool(yookassa_stub):
    payment = _paid_topup(yookassa_stub)
    pools = []

    def call():
        yookassa_client.fetch_payment(payment.provider_payment_id)
        pools.append(yookassa_client._pool(yookassa_stub.api_url))

    threads = [threading.Thread(target=call) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len({id(p) for p in pools}) == 2
    assert yookassa_client._pool(yookassa_stub.api_url) not in pools
    assert yookassa_stub.connections == 3  # this thread's (the POST) and one per thread


def test_the_environment_is_read_when_the_pool_is_made_not_on_every_call(yookassa_stub, monkeypatch):
    payment = _paid_topup(yookassa_stub)
    # A proxy appearing later is not looked up per call (the lookup was most of the SDK's cost).
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    assert yookassa_client.fetch_payment(payment.provider_payment_id).status == "succeeded"


def test_a_proxy_in_the_environment_is_honoured_by_a_new_pool(monkeypatch):
    import urllib3

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    pool = yookassa_client._new_pool("https://api.yookassa.ru/v3")
    assert isinstance(pool, urllib3.ProxyManager) and pool.proxy.host == "proxy.internal"
    monkeypatch.setenv("NO_PROXY", "api.yookassa.ru")
    assert not isinstance(yookassa_client._new_pool("https://api.yookassa.ru/v3"), urllib3.ProxyManager)


def test_https_is_verified_against_the_ca_bundle_requests_would_use(monkeypatch):
    from requests.certs import where

    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    pool = yookassa_client._new_pool("https://api.yookassa.ru/v3")
    assert pool.connection_pool_kw["cert_reqs"] == "CERT_REQUIRED"
    assert pool.connection_pool_kw["ca_certs"] == where()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ours.pem")
    assert yookassa_client._new_pool("https://api.yookassa.ru/v3").connection_pool_kw["ca_certs"] == "/etc/ssl/certs/ours.pem"


def test_an_answer_that_is_not_json_is_reported_as_unavailable(yookassa_stub, monkeypatch):
    payment = _paid_topup(yookassa_stub)
    monkeypatch.setattr(yookassa_client._Answer, "json", lambda self: __import__("json").loads(b"<html>bad gateway"))
    with pytest.raises(PaymentProviderUnavailable):
        yookassa_client.fetch_payment(payment.provider_payment_id)


def test_a_connection_the_server_dropped_is_retried_once_on_a_new_one(yookassa_stub, monkeypatch):
    payment = _paid_topup(yookassa_stub)
    plain = yookassa_stub.handle_api
    dropped = []

    def drop_once(method, path, headers, body):
        if method == "GET" and not dropped:
            dropped.append(path)
            raise ConnectionAbortedError("the server closes the kept-alive connection without answering")
        return plain(method, path, headers, body)

    monkeypatch.setattr(yookassa_stub, "handle_api", drop_once)
    monkeypatch.setattr(yookassa_stub._server, "handle_error", lambda *args: None)  # no traceback on stderr
    assert yookassa_client.fetch_payment(payment.provider_payment_id).status == "succeeded"
    assert dropped and yookassa_stub.connections == 2


@pytest.fixture
def silent_server():
    """Accepts connections and never answers: an API that hangs."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/v3"
    stop.set()
    thread.join(2)
    for conn in accepted:
        conn.close()
    server.close()


def test_a_hung_api_times_out_and_is_reported_as_unavailable(silent_server, settings, monkeypatch):
    settings.YOOKASSA_API_URL = silent_server
    monkeypatch.setattr(yookassa_client, "TIMEOUT", (1, 0.3))
    started = time.monotonic()
    with pytest.raises(PaymentProviderUnavailable):
        yookassa_client.fetch_payment("2f1c5a3e-000f-5000-8000-1f1f1f1f1f1f")
    assert time.monotonic() - started < 3  # not retried with the SDK's backoff either


def test_the_timeout_is_well_under_the_web_workers_timeout():
    connect, read = yookassa_client.TIMEOUT
    assert connect + read < 30  # gunicorn --timeout in deploy/: a hung API answers 503, no killed worker
