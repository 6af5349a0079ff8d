"""One error root: every app's refusals are ``GenbotError``s that carry the customer's message."""
from django.utils import translation

from billing import exceptions as billing_errors
from genbot.errors import GenbotError
from jobs import exceptions as job_errors
from jobs.providers import base as provider_errors
from payments import exceptions as payment_errors


def test_every_apps_root_is_a_genbot_error():
    for root in (billing_errors.BillingError, job_errors.JobError, payment_errors.PaymentError,
                 payment_errors.ProviderError, provider_errors.ProviderError):
        assert issubclass(root, GenbotError), root


def test_customer_blocked_is_defined_once_and_caught_as_billings_by_payments_callers():
    assert payment_errors.CustomerBlocked is billing_errors.CustomerBlocked
    assert issubclass(billing_errors.CustomerBlocked, billing_errors.BillingError)


def test_the_message_renders_in_the_language_active_where_it_is_shown():
    error = job_errors.PromptTooLong(limit=500)
    with translation.override("en"):
        assert str(error) == "The prompt is too long: keep it under 500 characters."
    with translation.override("ru"):
        assert str(error) != "The prompt is too long: keep it under 500 characters."
        assert "500" in str(error)
    with translation.override("en"):
        assert str(GenbotError()) == "The operation was refused."
        assert str(billing_errors.BillingError("Custom refusal")) == "Custom refusal"
