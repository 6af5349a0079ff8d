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
