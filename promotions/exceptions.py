"""The rules promotions guards, one exception class each (under ``genbot.errors.GenbotError``).

A promo code that does not exist, has expired, is used up or is not for this customer reads the
same to the customer (``PromoCodeNotValid``'s message): an error must never tell someone trying
codes which ones exist.
"""
from django.utils.translation import gettext_lazy as _

from genbot.errors import GenbotError, kind_of


class PromotionError(GenbotError):
    """Base for every refusal by promotions. ``str(exc)`` is fit to show a person."""

    default_message = _("This bonus cannot be given.")


class PromoCodeError(PromotionError):
    default_message = _("This promo code does not work.")


class PromoCodeNotValid(PromoCodeError):
    """Unknown, not yet or no longer valid, used up, or not for this customer: one message for all."""

    default_message = _("This promo code does not work. Check it and try again.")


PromoCodeUnknown = kind_of(PromoCodeNotValid, "PromoCodeUnknown", module=__name__, doc="No such code.")
PromoCodeExpired = kind_of(PromoCodeNotValid, "PromoCodeExpired", module=__name__,
                           doc="Outside its valid window, or switched off by staff.")
PromoCodeUsedUp = kind_of(PromoCodeNotValid, "PromoCodeUsedUp", module=__name__, doc="Its redemptions ran out.")
PromoCodeNotForCustomer = kind_of(PromoCodeNotValid, "PromoCodeNotForCustomer", module=__name__,
                                  doc="For new customers only, and this one has paid before.")


class PromoCodeAlreadyRedeemed(PromoCodeError):
    default_message = _("You have already used this promo code.")


class PromoCodeAttemptsExceeded(PromoCodeError):
    default_message = _("Too many promo code attempts. Try again in %(minutes)s min.")


class PromoCodesUnavailable(PromoCodeError):
    """The attempts cannot be counted (Redis does not answer): no code is checked without a limit."""

    default_message = _("Promo codes cannot be checked right now. Try again in a few minutes.")


class InvalidPromoCode(PromotionError):
    """Staff creating a code gave something the rules refuse (the admin form shows it)."""

    default_message = _("Check the promo code's settings.")
