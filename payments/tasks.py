"""Periodic work, scheduled by dotted path (``payments.tasks.sync_pending_payments``)."""
from . import services


def sync_pending_payments() -> dict:
    """Recover lost YooKassa notifications and unfinished refunds; returns the counts."""
    return services.sync_pending_payments().as_dict()
