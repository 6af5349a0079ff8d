"""The YooKassa stub serves the shop the settings name: the demo credentials live in settings only."""
import requests

from standins.yookassa import YooKassaStub


def test_the_stub_serves_the_shop_the_settings_name(settings):
    settings.YOOKASSA_SHOP_ID, settings.YOOKASSA_SECRET_KEY = "shop-from-settings", "secret-from-settings"
    with YooKassaStub() as stub:
        ours = requests.get(f"{stub.api_url}/payments/none", auth=("shop-from-settings", "secret-from-settings"), timeout=5)
        other = requests.get(f"{stub.api_url}/payments/none", auth=("100500", "test_genbot_demo_secret"), timeout=5)
    assert (stub.shop_id, stub.secret_key) == ("shop-from-settings", "secret-from-settings")
    assert ours.status_code == 404 and other.status_code == 401


def test_a_shop_calling_too_often_gets_yookassas_429_and_other_shops_do_not():
    with YooKassaStub(shop_id="shop", secret_key="secret", rate_limit=(2, 60.0)) as stub:
        answers = [requests.get(f"{stub.api_url}/payments/none", auth=("shop", "secret"), timeout=5) for _ in range(3)]
        other = requests.get(f"{stub.api_url}/payments/none", auth=("another", "shop"), timeout=5)
    assert [answer.status_code for answer in answers] == [404, 404, 429]
    body = answers[2].json()
    assert body["type"] == "error" and body["code"] == "too_many_requests" and body["id"] and body["description"]
    assert other.status_code == 401  # its own window: refused for its credentials, not for the rate
