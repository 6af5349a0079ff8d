import pytest


@pytest.fixture(autouse=True)
def _english(english):
    """The back-office tests read the admin in English."""
