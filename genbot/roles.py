"""Staff roles. "support" may see customers, payments, jobs and the ledger, block customers,
message them, cancel and retry jobs, and adjust balances or refund up to
SUPPORT_MONEY_LIMIT_KOPECKS per action and SUPPORT_DAILY_LIMIT_KOPECKS in 24 hours
(billing.policy); above that their request waits, and they see it with everyone's requests.
Only superusers approve or reject requests (billing.staff) and open the RQ dashboard
(genbot.urls); superusers have no limit."""
import logging

from django.contrib.auth.models import Group, Permission

log = logging.getLogger(__name__)

SUPPORT_GROUP = "support"
SUPPORT_PERMISSIONS = [
    "billing.view_customer", "billing.change_customer", "billing.view_transfer", "billing.view_account",
    "billing.adjust_balance", "billing.view_balanceadjustment",
    "payments.view_payment", "payments.view_refund", "payments.refund_payment", "payments.view_refundrequest",
    "jobs.view_job", "jobs.view_price", "jobs.cancel_job", "jobs.retry_job",
]


def ensure_roles(sender=None, **kwargs) -> Group:
    """Create or refresh the support group (runs after every migrate)."""
    group, _created = Group.objects.get_or_create(name=SUPPORT_GROUP)
    wanted = []
    for dotted in SUPPORT_PERMISSIONS:
        app_label, codename = dotted.split(".")
        perm = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
        if perm is None:
            log.debug("permission %s does not exist yet", dotted)
            continue
        wanted.append(perm)
    group.permissions.set(wanted)
    return group
