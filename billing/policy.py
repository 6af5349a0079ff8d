"""Who among staff may move how much money by hand.

Support members (any staff but superusers) may adjust balances and refund up to
``SUPPORT_MONEY_LIMIT_KOPECKS`` per action and ``SUPPORT_DAILY_LIMIT_KOPECKS`` in any 24 hours;
beyond either, the action waits for a superuser (``billing.staff``, ``payments.staff``).
Superusers and operators' code (no staff member) are not limited.

The daily figure is what the ledger says the member moved: the absolute amounts of the rows
carrying them as ``staff_user`` in the last 24 hours (adjustments both ways and refund debits).
Requests waiting for a superuser are not counted: they move nothing until a superuser approves
them, and then the money is on the superuser's account, not the requester's limit; counting
them would let one large request block a member's small corrections for a day.
"""
from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from .exceptions import StaffLimitExceeded
from .models import Transfer
from .money import format_amount

DAY = timedelta(hours=24)


def is_limited(staff_user) -> bool:
    return staff_user is not None and not staff_user.is_superuser


def lock_staff_member(staff_user) -> None:
    """Lock the staff member's user row for the rest of the transaction (expects one).

    Serialises one member's money actions, so each reads the daily total the one before
    committed. Taken before any wallet or payment row: one lock order, no deadlocks.
    """
    get_user_model().objects.select_for_update().values_list("pk", flat=True).get(pk=staff_user.pk)


def moved_today(staff_user) -> int:
    """Kopecks the staff member moved by hand in the last 24 hours (the ledger's word)."""
    since = timezone.now() - DAY
    total = Transfer.objects.filter(staff_user=staff_user, created_at__gte=since).aggregate(total=Sum("amount"))
    return total["total"] or 0


def check_staff_money_action(*, acting_user, amount: int) -> None:
    """Raise ``StaffLimitExceeded`` when ``acting_user`` may not move ``amount`` themselves.

    Call inside the transaction that moves the money: it locks the member's row
    (``lock_staff_member``) before it reads the daily total.
    """
    if not is_limited(acting_user):
        return
    amount = abs(amount)
    limit = settings.SUPPORT_MONEY_LIMIT_KOPECKS
    if amount > limit:
        raise StaffLimitExceeded(
            _("%(amount)s is above your limit of %(limit)s: ask a superuser.")
            % {"amount": format_amount(amount), "limit": format_amount(limit)}
        )
    lock_staff_member(acting_user)
    daily = settings.SUPPORT_DAILY_LIMIT_KOPECKS
    done = moved_today(acting_user)
    if done + amount > daily:
        raise StaffLimitExceeded(
            _("%(amount)s would take you above your limit of %(limit)s in 24 hours (%(done)s done): "
              "ask a superuser.")
            % {"amount": format_amount(amount), "limit": format_amount(daily),
               "done": format_amount(done)}
        )
