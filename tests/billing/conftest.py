import pytest


@pytest.fixture(autouse=True)
def _english(english):
    """Billing's tests read messages in English."""
