"""Idempotency keys of staff money actions: made by the server, never by the person's browser.

A staff form carries a signed token of a fresh key (``form_token``); the server reads the key
back (``key_from_token``) and refuses a token it did not sign. Every staff action also checks
that its key lies in its own namespace (``check_staff_key``), so no staff action can ever write
a ledger row under a key another writer owns (``yookassa:<id>``, ``stars:<id>``, ``job:<id>``):
taking such a key first would block that writer's credit forever.
"""
from __future__ import annotations

import uuid

from django.core import signing

from .exceptions import InvalidStaffKey

ADJUST_NAMESPACE = "admin-adjust:"
REFUND_NAMESPACE = "admin-refund:"

_signer = signing.Signer(salt="genbot.staff-action-key")


def new_key(namespace: str) -> str:
    return f"{namespace}{uuid.uuid4()}"


def check_staff_key(key: str, namespace: str) -> str:
    """``key`` if it is ``<namespace><uuid>``; else ``InvalidStaffKey``."""
    if not isinstance(key, str) or not key.startswith(namespace):
        raise InvalidStaffKey()
    key_uuid(key, namespace)
    return key


def key_uuid(key: str, namespace: str) -> uuid.UUID:
    """The UUID of a staff key (a refund sends it to the provider as its Idempotence-Key)."""
    try:
        return uuid.UUID(key[len(namespace):])
    except ValueError as exc:
        raise InvalidStaffKey() from exc


def form_token(namespace: str) -> str:
    """A signed token of a fresh key, for a staff form's hidden field."""
    return _signer.sign(new_key(namespace))


def key_from_token(token: str, namespace: str) -> str:
    """The key a form token carries; ``InvalidStaffKey`` for a token the server did not sign."""
    try:
        key = _signer.unsign(token or "")
    except signing.BadSignature as exc:
        raise InvalidStaffKey() from exc
    return check_staff_key(key, namespace)
