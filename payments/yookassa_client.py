"""The YooKassa API through the official ``yookassa`` SDK, and nothing else in payments calls it.

The SDK keeps its configuration in class attributes; ``_configure`` points it at
``settings.YOOKASSA_API_URL`` (the real API, or the local stub in tests and offline runs) before
each call, so a settings change (tests) takes effect at once. Answers come back as small frozen
dataclasses in kopecks, so the services never touch SDK objects.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import requests
from django.conf import settings
from yookassa import Configuration
from yookassa import Payment as SdkPayment
from yookassa import Refund as SdkRefund
from yookassa.domain.exceptions import ApiError

from billing.money import from_api_value

from .exceptions import ProviderRefused, ProviderUnavailable

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RemotePayment:
    id: str
    status: str
    amount: int
    currency: str
    metadata: dict = field(default_factory=dict)
    confirmation_url: str = ""
    cancellation_reason: str = ""


@dataclass(frozen=True)
class RemoteRefund:
    id: str
    payment_id: str
    status: str
    amount: int
    currency: str


def _configure() -> None:
    wanted = (settings.YOOKASSA_SHOP_ID, settings.YOOKASSA_SECRET_KEY, settings.YOOKASSA_API_URL)
    if (Configuration.account_id, Configuration.secret_key, Configuration.api_url) != wanted:
        Configuration.configure(wanted[0], wanted[1], api_url=wanted[2])


def _call(fn, *args, **kwargs):
    """Run an SDK call, sorting failures into retryable and final ones."""
    _configure()
    try:
        return fn(*args, **kwargs)
    except ApiError as exc:
        code = getattr(exc, "HTTP_CODE", None) or 0
        logger.warning("YooKassa API error %s: %s", code, exc)
        if code in (0, 429) or code >= 500:  # 0: a status the SDK has no class for (502, 503)
            raise ProviderUnavailable() from exc
        raise ProviderRefused() from exc
    except (requests.RequestException, OSError, AttributeError) as exc:
        # The SDK turns a connection error into AttributeError (it reads ``e.response`` of an
        # exception that has none).
        logger.warning("YooKassa API unreachable: %r", exc)
        raise ProviderUnavailable() from exc


def _amount(obj) -> tuple[int, str]:
    return from_api_value(str(obj.amount.value)), str(obj.amount.currency)


def _remote_payment(obj) -> RemotePayment:
    amount, currency = _amount(obj)
    confirmation = getattr(obj, "confirmation", None)
    cancellation = getattr(obj, "cancellation_details", None)
    return RemotePayment(
        id=str(obj.id),
        status=str(obj.status),
        amount=amount,
        currency=currency,
        metadata=dict(obj.metadata or {}),
        confirmation_url=getattr(confirmation, "confirmation_url", "") or "",
        cancellation_reason=getattr(cancellation, "reason", "") or "",
    )


def _remote_refund(obj) -> RemoteRefund:
    amount, currency = _amount(obj)
    return RemoteRefund(
        id=str(obj.id), payment_id=str(obj.payment_id), status=str(obj.status), amount=amount,
        currency=currency,
    )


def create_payment(params: dict, *, idempotency_key: str) -> RemotePayment:
    return _remote_payment(_call(SdkPayment.create, params, idempotency_key))


def fetch_payment(payment_id: str) -> RemotePayment:
    return _remote_payment(_call(SdkPayment.find_one, payment_id))


def create_refund(params: dict, *, idempotency_key: str) -> RemoteRefund:
    return _remote_refund(_call(SdkRefund.create, params, idempotency_key))


def fetch_refund(refund_id: str) -> RemoteRefund:
    return _remote_refund(_call(SdkRefund.find_one, refund_id))
