"""One error root: every app's refusals are ``GenbotError``s that carry the customer's message."""
from django.utils import translation

from billing import exceptions as billing_errors
from genbot.errors import GenbotError
from jobs import exceptions as job_errors
from jobs.providers import base as provider_errors
from payments import exceptions as payment_errors


def test_every_apps_root_is_a_genbot_error():
    for root in (billing_errors.BillingError, job_errors.JobError, payment_errors.PaymentError,
                 payment_errors.PaymentProviderError, provider_errors.ProviderError):
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


def test_no_two_refusals_share_a_name():
    """Each exception is defined once: ``ProviderError`` is the AI providers', payments' say so."""
    modules = (billing_errors, job_errors, provider_errors, payment_errors)
    defined = [
        value for module in modules for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, GenbotError) and value.__module__ == module.__name__
    ]
    names = [error.__name__ for error in defined]
    assert len(names) == len(set(names)), sorted(name for name in names if names.count(name) > 1)
    assert {"PaymentProviderError", "PaymentProviderUnavailable", "ProviderError", "ProviderUnavailable"} <= set(names)
