import pytest

from standins.stubserver import STOP_POLL_SECONDS
from standins.yookassa import YooKassaStub


@pytest.fixture
def yookassa_stub(settings):
    """The real SDK pointed at a fresh local stub; loopback (where tests post from) allowed."""
    stub = YooKassaStub(shop_id="test-shop", secret_key="test-secret").start()
    settings.YOOKASSA_SHOP_ID = stub.shop_id
    settings.YOOKASSA_SECRET_KEY = stub.secret_key
    settings.YOOKASSA_API_URL = stub.api_url
    settings.YOOKASSA_ALLOWED_IPS = ["185.71.76.0/27", "127.0.0.1"]
    settings.TRUSTED_PROXY_COUNT = 0
    settings.YOOKASSA_RECEIPTS = False
    yield stub
    stub.stop()


@pytest.fixture
def live_stub(yookassa_stub, live_server):
    """The stub posting its notifications to the webhook of a live server."""
    yookassa_stub.webhook_url = f"{live_server.url}/webhook/yookassa"
    return yookassa_stub


@pytest.fixture
def books_balance():
    """Call at the end of a money test: the cached figures agree with the ledger and sum to 0."""
    from billing import selectors

    def check():
        assert selectors.find_drift() == []
        assert selectors.total_of_all_accounts() == 0

    return check


@pytest.fixture
def paid_topup(yookassa_stub):
    """make(customer, amount) -> a YooKassa top-up paid at the stub and credited through the service."""
    from payments import services

    def make(customer, amount=50_000):
        payment = services.create_topup(customer=customer, amount=amount, provider="yookassa")
        yookassa_stub.mark_succeeded(payment.provider_payment_id, notify=False)
        return services.sync_yookassa_payment(provider_payment_id=payment.provider_payment_id)

    return make


class _TelegramRefundStub:
    """A tiny Bot API server answering refundStarPayment the way Telegram does."""

    def __init__(self):
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.requests: list[tuple[str, dict]] = []
        self.refunded: set[str] = set()
        self.answer_status = 200  # 500: an outage
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                stub.requests.append((self.path, body))
                charge = body.get("telegram_payment_charge_id")
                if stub.answer_status != 200:
                    status, answer = stub.answer_status, {"ok": False, "error_code": stub.answer_status}
                elif charge in stub.refunded:
                    status, answer = 400, {"ok": False, "error_code": 400,
                                           "description": "Bad Request: CHARGE_ALREADY_REFUNDED"}
                elif not str(charge).startswith("tg-charge"):
                    status, answer = 400, {"ok": False, "error_code": 400,
                                           "description": "Bad Request: CHARGE_NOT_FOUND"}
                else:
                    stub.refunded.add(charge)
                    status, answer = 200, {"ok": True, "result": True}
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": STOP_POLL_SECONDS}, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def telegram_stub(settings):
    stub = _TelegramRefundStub()
    settings.TELEGRAM_API_URL = stub.url
    settings.BOT_TOKEN = "123:test-token"
    yield stub
    stub.stop()
