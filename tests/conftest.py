import pytest

from tests.helpers import RUB_5000, make_customer


@pytest.fixture
def customer(db):
    return make_customer()


@pytest.fixture
def funded_customer(db):
    """A customer with 1,000 ₽ available."""
    return make_customer(balance=100_000)


@pytest.fixture
def english(settings):
    """Read messages in English, the source language (ru is tested where the bot speaks it)."""
    from django.utils import translation

    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


@pytest.fixture
def sandbox(settings):
    """The local Bot API sandbox on a free port, with the bot's settings pointed at it."""
    from standins.telegram import SandboxServer

    server = SandboxServer(port=0).start()
    settings.TELEGRAM_API_URL = server.url
    settings.BOT_TOKEN = ""
    yield server
    server.stop()


# --- staff money (billing/policy.py): both limits at 5,000 ₽, a support member, a superuser ---


@pytest.fixture
def limits(settings):
    settings.SUPPORT_MONEY_LIMIT_KOPECKS = RUB_5000
    settings.SUPPORT_DAILY_LIMIT_KOPECKS = RUB_5000


@pytest.fixture
def support(django_user_model, db):
    """A staff member without superuser rights (their permissions as each test needs)."""
    return django_user_model.objects.create_user("support", password="pw", is_staff=True)


@pytest.fixture
def boss(django_user_model, db):
    return django_user_model.objects.create_superuser("boss", password="pw")
