import pytest


@pytest.fixture(autouse=True)
def _english(english):
    """The back-office tests read the admin in English."""


@pytest.fixture
def support_client(client, django_user_model):
    """A client logged in as a member of the support group."""
    from genbot.roles import ensure_roles

    user = django_user_model.objects.create_user("support", password="pw", is_staff=True)
    user.groups.add(ensure_roles())
    client.force_login(user)
    return client
