import pytest

from tests.helpers import make_customer


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
    from telegram_bot.sandbox.server import SandboxServer

    server = SandboxServer(port=0).start()
    settings.TELEGRAM_API_URL = server.url
    settings.BOT_TOKEN = ""
    yield server
    server.stop()
