"""Money: integers of kopecks, parsed and formatted here and nowhere else.

A person may type "150", "150.5", "150,50", "1 500 ₽" or "1 500 руб."; the YooKassa API speaks
decimal strings ("150.00"). Inside genbot an amount is always an ``int`` of kopecks.
"""
from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.conf import settings
from django.utils.translation import gettext as _

from .exceptions import InvalidAmount

KOPECKS_PER_ROUBLE = 100

# Currency marks people type after (or before) a number; removed before parsing.
_CURRENCY_MARKS = re.compile(r"(₽|руб(лей|ля|ль)?\.?|р\.|rub\.?|rur)", re.IGNORECASE)
# Spaces of every kind people (and Telegram clients) use as thousands separators.
_GROUP_SPACES = re.compile(r"[\s\u00a0\u202f\u2009_']")
_NUMBER = re.compile(r"^(?P<whole>\d+)(?:[.,](?P<frac>\d+))?$")


def max_kopecks() -> int:
    return settings.MONEY_MAX_KOPECKS


def parse_amount(text: str | int | Decimal) -> int:
    """Parse what a person typed into kopecks; raise ``InvalidAmount`` with a clear reason."""
    if isinstance(text, bool):
        raise InvalidAmount(_("That is not a valid amount."))
    if isinstance(text, int):
        return check_kopecks(text * KOPECKS_PER_ROUBLE)
    if isinstance(text, Decimal):
        text = format(text, "f")
    raw = str(text).strip()
    if not raw:
        raise InvalidAmount(_("Enter an amount, for example 500."))
    if raw.startswith("-") or raw.startswith("−"):
        raise InvalidAmount(_("The amount must be positive."))
    cleaned = _GROUP_SPACES.sub("", _CURRENCY_MARKS.sub("", raw)).lstrip("+")
    match = _NUMBER.match(cleaned)
    if match is None:
        raise InvalidAmount(_("“%(text)s” is not an amount. Enter a number, for example 500 or 150,50.") % {"text": raw[:40]})
    whole, frac = match["whole"], match["frac"] or ""
    if len(frac) > 2:
        raise InvalidAmount(_("An amount has at most two digits after the decimal point."))
    if len(whole) > 15:
        raise InvalidAmount(_("The amount is too large."))
    kopecks = int(whole) * KOPECKS_PER_ROUBLE + int(frac.ljust(2, "0") or 0)
    return check_kopecks(kopecks)


def check_kopecks(kopecks: int, *, allow_zero: bool = False) -> int:
    """Validate an amount already in kopecks (an int: never a float)."""
    if isinstance(kopecks, bool) or not isinstance(kopecks, int):
        raise InvalidAmount(_("An amount must be a whole number of kopecks."))
    if kopecks < 0:
        raise InvalidAmount(_("The amount must be positive."))
    if kopecks == 0 and not allow_zero:
        raise InvalidAmount(_("The amount must be greater than zero."))
    if kopecks > max_kopecks():
        raise InvalidAmount(
            _("The amount is too large: at most %(max)s.") % {"max": format_amount(max_kopecks())}
        )
    return kopecks


def format_amount(kopecks: int, language: str = "ru") -> str:
    """Format kopecks for a person: ru "1 500 ₽", "150,50 ₽"; en "₽1,500", "₽150.50"."""
    sign = "-" if kopecks < 0 else ""
    roubles, rest = divmod(abs(int(kopecks)), KOPECKS_PER_ROUBLE)
    if (language or "ru").startswith("en"):
        body = f"{roubles:,}" + (f".{rest:02d}" if rest else "")
        return f"{sign}₽{body}"
    body = f"{roubles:,}".replace(",", "\u00a0") + (f",{rest:02d}" if rest else "")
    return f"{sign}{body}\u00a0₽"


def to_api_value(kopecks: int) -> str:
    """Kopecks to the decimal string payment APIs speak: 15000 -> "150.00"."""
    roubles, rest = divmod(int(kopecks), KOPECKS_PER_ROUBLE)
    return f"{roubles}.{rest:02d}"


def from_api_value(value: str | Decimal | int | float) -> int:
    """A payment API's decimal amount ("150.00") to kopecks; refuses fractions of a kopeck."""
    refusal = _("The payment provider sent an invalid amount.")
    kopecks = _finite_decimal(value, refusal) * KOPECKS_PER_ROUBLE
    if kopecks != kopecks.to_integral_value():
        raise InvalidAmount(refusal)
    return int(kopecks)


def roubles_to_kopecks(value: str | float | Decimal) -> int:
    """A legacy rouble figure (possibly fractional, possibly a float) rounded to the kopeck."""
    amount = _finite_decimal(value, _("That is not a valid amount."))
    return int((amount * KOPECKS_PER_ROUBLE).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _finite_decimal(value, refusal: str) -> Decimal:
    """``value`` as a finite Decimal, read through its ``str`` (a float as it prints, not its
    binary fraction); anything else raises ``InvalidAmount(refusal)``."""
    try:
        amount = Decimal(str(value))
    except InvalidOperation as exc:
        raise InvalidAmount(refusal) from exc
    if not amount.is_finite():
        raise InvalidAmount(refusal)
    return amount
