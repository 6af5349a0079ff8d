import pytest
from django.utils import translation


@pytest.fixture(autouse=True)
def english(settings):
    """Billing's tests read messages in English (the source language); ru is tested by the bot."""
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield
