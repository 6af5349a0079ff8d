import pytest

from payments.yookassa_stub import YooKassaStub


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
