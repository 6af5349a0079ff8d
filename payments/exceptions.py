"""The rules payments guards, one exception class each.

Messages are lazy translations fit to show a customer or a staff member; services raise them
and change nothing.
"""
from django.utils.translation import gettext_lazy as _

from billing.exceptions import CustomerBlocked  # noqa: F401 - blocking is billing's; a top-up refuses with it
from genbot.errors import GenbotError


class PaymentError(GenbotError):
    """Base for every refusal by payments. ``str(exc)`` is fit to show a person."""

    default_message = _("The payment operation was refused.")


# --- top-ups --------------------------------------------------------------------------------


class TopupRefused(PaymentError):
    default_message = _("This top-up cannot be made.")


class TopupAmountOutOfRange(TopupRefused):
    default_message = _("The top-up amount is outside the allowed range.")


class UnknownProvider(TopupRefused):
    default_message = _("This payment method is not available.")


class ReceiptContactRequired(TopupRefused):
    default_message = _("Enter an e-mail address or a phone number for the receipt.")


# --- the provider ---------------------------------------------------------------------------


class PaymentProviderError(PaymentError):
    """The payment provider could not be asked or refused the request."""

    default_message = _("The payment service did not answer. Please try again in a minute.")


class PaymentProviderUnavailable(PaymentProviderError):
    """Network failure, time-out, 5xx: worth retrying with the same idempotency key."""


class PaymentProviderRefused(PaymentProviderError):
    """A 4xx answer: retrying the same request will not help."""

    default_message = _("The payment service refused the request.")


# --- Telegram Stars invoices ----------------------------------------------------------------


class StarsInvoiceInvalid(PaymentError):
    default_message = _("This invoice is not valid. Please request a new one.")


class StarsInvoiceTampered(StarsInvoiceInvalid):
    """The payload's signature does not match: not ours, or edited."""


class StarsInvoiceForeign(StarsInvoiceInvalid):
    default_message = _("This invoice was issued to another account.")


class StarsInvoiceStale(StarsInvoiceInvalid):
    default_message = _("This invoice has expired. Please request a new one.")


class StarsInvoiceMismatch(StarsInvoiceInvalid):
    """Currency or total differ from what was invoiced."""

    default_message = _("The invoice total does not match. Please request a new one.")


class StarsInvoiceAlreadyPaid(StarsInvoiceInvalid):
    default_message = _("This invoice has already been paid.")


# --- refunds --------------------------------------------------------------------------------


class RefundRefused(PaymentError):
    default_message = _("This refund cannot be made.")


class PaymentNotRefundable(RefundRefused):
    default_message = _("Only a succeeded payment can be refunded.")


class RefundExceedsPayment(RefundRefused):
    default_message = _("The refund is larger than what is left of the payment.")


class RefundExceedsBalance(RefundRefused):
    default_message = _(
        "The customer has already spent this money: the wallet holds less than the refund."
    )


class RefundExceedsCash(RefundExceedsBalance):
    """The wallet holds enough, but part of it is bonus money: that can be spent, never cashed out."""

    default_message = _(
        "At most %(cash)s can be refunded in cash: the rest of the wallet is bonus money, which the "
        "customer can spend but which is never paid out."
    )


class PartialStarsRefundNotSupported(RefundRefused):
    default_message = _("Telegram Stars payments can only be refunded in full.")
