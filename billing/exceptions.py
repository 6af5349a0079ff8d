"""The rules billing guards, one exception class each.

Messages are lazy translations so that an interface (the bot, the admin) shows them in the
customer's or staff member's language; services raise them and change nothing.
"""
from django.utils.translation import gettext_lazy as _

from genbot.errors import GenbotError


class BillingError(GenbotError):
    """Base for every refusal by billing. ``str(exc)`` is fit to show a person."""


class InvalidAmount(BillingError, ValueError):
    default_message = _("That is not a valid amount.")


class InsufficientFunds(BillingError):
    default_message = _("Not enough money on the balance.")

    def __init__(self, message=None, *, available: int | None = None, required: int | None = None):
        self.available = available
        self.required = required
        super().__init__(message)


class IdempotencyConflict(BillingError):
    """The idempotency key was already used for a different operation."""

    default_message = _("This operation was already performed with different details.")


class ReservationError(BillingError):
    """A reservation cannot move the way asked (already posted, already voided, over-charge)."""

    default_message = _("The reserved amount cannot be changed that way.")


class ReservationAlreadyVoided(ReservationError):
    default_message = _("This reservation was already released; it cannot be charged.")


class ReservationAlreadyPosted(ReservationError):
    default_message = _("This reservation was already charged; it cannot be released.")


class ChargeExceedsReservation(ReservationError):
    default_message = _("The charge is larger than the reserved amount.")


class CustomerBlocked(BillingError):
    """Staff blocked the customer: no top-up, no spending. Payments and jobs raise this one too."""

    default_message = _("This account is blocked.")


class StaffLimitExceeded(BillingError):
    """A support member asked to move more money than their role allows."""

    default_message = _("This amount is above your limit: ask a superuser.")


class InvalidStaffKey(BillingError):
    """A staff form's key was not made by the server for this action (edited, or another namespace)."""

    default_message = _("This form is damaged or was changed. Open it again.")


class StaffDecisionRefused(BillingError):
    """Only a superuser other than the requester decides a pending staff request, and only once."""

    default_message = _("Only another superuser can decide this request.")


class StaffRequestAlreadyDecided(StaffDecisionRefused):
    default_message = _("This request was already decided.")
