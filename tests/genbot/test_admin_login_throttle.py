"""Admin logins are throttled (django-axes): too many wrong passwords lock that username out from
that address, even with the right password."""
import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


def log_in(client, username, password, ip="203.0.113.20"):
    return client.post(reverse("admin:login"), {"username": username, "password": password,
                                                "next": reverse("admin:index")}, REMOTE_ADDR=ip)


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


@pytest.fixture
def staff(settings):
    settings.AXES_FAILURE_LIMIT = 3
    users = get_user_model().objects
    users.create_superuser("boss", "", "right-password-1")
    users.create_superuser("other", "", "right-password-2")


def test_wrong_passwords_lock_the_login_out_even_with_the_right_password(staff):
    client = Client()
    for _ in range(2):
        assert log_in(client, "boss", "guess").status_code == 200  # the form again, with an error
    assert log_in(client, "boss", "guess").status_code == 429  # the third: locked
    locked = log_in(client, "boss", "right-password-1")
    assert locked.status_code == 429 and not logged_in(client)
    # Another username from that address, and the same one from another address, still log in.
    assert log_in(Client(), "other", "right-password-2").status_code == 302
    elsewhere = Client()
    assert log_in(elsewhere, "boss", "right-password-1", ip="198.51.100.4").status_code == 302 and logged_in(elsewhere)


def test_a_successful_login_resets_the_count(staff):
    client = Client()
    for _ in range(2):
        log_in(client, "boss", "guess")
    assert log_in(client, "boss", "right-password-1").status_code == 302
    client.logout()
    for _ in range(2):
        assert log_in(client, "boss", "guess").status_code == 200
    assert log_in(client, "boss", "right-password-1").status_code == 302


def test_behind_a_proxy_the_forwarded_address_is_the_one_locked_out(staff, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    attacker = Client()
    for _ in range(3):
        attacker.post(reverse("admin:login"), {"username": "boss", "password": "guess"},
                      REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.66")
    # Everyone comes through the proxy (127.0.0.1): only the attacker's address is locked.
    colleague = Client()
    response = colleague.post(reverse("admin:login"), {"username": "boss", "password": "right-password-1"},
                              REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.9")
    assert response.status_code == 302 and logged_in(colleague)
