import shutil
import socket
import subprocess
import time

import pytest

from billing import services
from tests.helpers import free_port, make_customer

pytestmark = pytest.mark.django_db


@pytest.fixture
def own_redis(settings):
    """A Redis server of this test's own, so stopping it disturbs nothing else."""
    port = free_port()
    proc = subprocess.Popen(
        [shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.05)
    url = f"redis://127.0.0.1:{port}/0"
    settings.RQ_QUEUES = {name: {"URL": url} for name in ("default", "images", "videos")}
    yield proc
    proc.kill()
    proc.wait()


def test_healthz_answers_while_the_process_lives(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert response["X-Request-ID"]


def test_readyz_is_200_with_redis_and_503_once_redis_stops(client, own_redis):
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.content
    assert ready.json()["checks"]["database"] == "ok"
    assert set(ready.json()["checks"]["queues"]) == {"default", "images", "videos"}

    own_redis.kill()
    own_redis.wait()
    down = client.get("/readyz")
    assert down.status_code == 503
    assert down.json()["checks"]["queues"].startswith("down")
    assert client.get("/healthz").status_code == 200


def test_metrics_report_requests_jobs_payments_and_ledger(client):
    c = make_customer(balance=50_000)
    services.reserve_balance(customer=c, amount=1_000, idempotency_key="j")
    client.get("/healthz")
    body = client.get("/metrics").content.decode()
    assert 'genbot_http_requests_total{method="GET",status="200"}' in body
    assert "genbot_http_request_duration_seconds_bucket" in body
    assert 'genbot_ledger_kopecks{account="wallets",figure="balance"} 50000.0' in body
    assert 'genbot_ledger_kopecks{account="wallets",figure="held"} 1000.0' in body
    assert "genbot_jobs" in body and "genbot_payments" in body and "genbot_queue_length" in body


def test_metrics_require_the_token_when_one_is_set(client, settings):
    settings.METRICS_TOKEN = "s3cret"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret", REMOTE_ADDR="203.0.113.7").status_code == 200


def test_without_a_token_metrics_answer_only_to_this_machine(client, settings):
    settings.METRICS_TOKEN = ""
    settings.DEBUG = False
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.7").status_code == 403
    # Through a reverse proxy on this machine: from elsewhere.
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.7").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_REAL_IP="203.0.113.7").status_code == 403
    settings.DEBUG = True
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.7").status_code == 200


def test_a_request_id_from_the_proxy_is_kept_and_logged(client, caplog):
    import logging

    from genbot.logcontext import ContextFilter, bind

    response = client.get("/healthz", HTTP_X_REQUEST_ID="abc-123")
    assert response["X-Request-ID"] == "abc-123"
    assert client.get("/healthz", HTTP_X_REQUEST_ID="bad id\nwith newline")["X-Request-ID"] != "bad id\nwith newline"
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    with bind(job_id=42):
        ContextFilter().filter(record)
    assert record.context == "job_id=42"
