"""Who among staff may move how much money by hand.

Support members (any staff but superusers) may adjust balances and refund up to
``SUPPORT_MONEY_LIMIT_KOPECKS`` per action; beyond it only a superuser may. Interfaces where a
person acts (the admin) call this before the service; services stay usable by operators' code.
"""
from django.conf import settings
from django.utils.translation import gettext as _

from .exceptions import StaffLimitExceeded
from .money import format_amount


def check_staff_money_limit(*, staff_user, amount: int) -> None:
    if staff_user is None or staff_user.is_superuser:
        return
    limit = settings.SUPPORT_MONEY_LIMIT_KOPECKS
    if abs(amount) > limit:
        raise StaffLimitExceeded(
            _("%(amount)s is above your limit of %(limit)s: ask a superuser.")
            % {"amount": format_amount(abs(amount), "en"), "limit": format_amount(limit, "en")}
        )
