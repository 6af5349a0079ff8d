"""The YooKassa API through the official ``yookassa`` SDK, and nothing else in payments calls it.

The SDK keeps its configuration in class attributes; ``_configure`` points it at
``settings.YOOKASSA_API_URL`` (the real API, or the local stub in tests and offline runs) before
each call, so a settings change (tests) takes effect at once. Answers come back as small frozen
dataclasses in kopecks, so the services never touch SDK objects.

How the SDK's calls travel is changed in one place, ``_ApiClient``: the SDK's own client opens a
new ``requests.Session`` (a new TCP/TLS connection) for every call, looks the proxy variables up
in the environment each time and sets no timeout, so a hung API would hold a web worker until
gunicorn kills it. Ours sends through one kept-alive urllib3 connection pool per thread, with
``TIMEOUT`` and the environment read once (urllib3 is what requests runs on; requests' own layer
was some 40% of the client's time per call). Headers, auth, the SDK's retry of a POST answered 202
and its error classes are the SDK's. ``SdkPayment`` and ``SdkRefund`` are the SDK's classes with
that client.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

import urllib3
from django.conf import settings
from requests.certs import where as default_ca_bundle
from requests.utils import get_environ_proxies
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import MaxRetryError, ProtocolError
from yookassa import Configuration
from yookassa import Payment as _SdkPayment
from yookassa import Refund as _SdkRefund
from yookassa.client import ApiClient
from yookassa.domain.exceptions import ApiError

from billing.money import from_api_value

from .exceptions import PaymentProviderRefused, PaymentProviderUnavailable

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


# (connect, read) seconds. Well under gunicorn's 30 s worker timeout: a webhook whose API call
# hangs answers 503 (YooKassa sends it again) instead of having its worker killed.
TIMEOUT = (5, 15)

_local = threading.local()


def _new_pool(endpoint: str) -> urllib3.PoolManager:
    """A pool keeping one connection alive, configured once from the environment."""
    # The SDK's retry policy: a POST answered 202 is repeated (same Idempotence-Key) after its
    # backoff. Connection and read errors are not retried with that backoff (seconds: an
    # unreachable API would hold the webhook past its timeout); ``_ApiClient.execute`` tries a
    # dropped connection once more, at once.
    retries = urllib3.Retry(
        total=Configuration.max_attempts, connect=0, read=0, other=0,
        backoff_factor=Configuration.timeout / 1000, allowed_methods=["POST"], status_forcelist=[202],
    )
    verify = Configuration.verify
    options = dict(
        num_pools=1, maxsize=1, retries=retries, timeout=urllib3.Timeout(connect=TIMEOUT[0], read=TIMEOUT[1]),
        cert_reqs="CERT_NONE" if verify is False else "CERT_REQUIRED",
        # requests' choice of CA bundle, which the SDK relied on.
        ca_certs=verify if isinstance(verify, str) else (
            os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or default_ca_bundle()
        ),
    )
    # The proxy HTTPS_PROXY/HTTP_PROXY give this endpoint, unless NO_PROXY exempts it.
    proxy = get_environ_proxies(endpoint).get(urlsplit(endpoint).scheme)
    return urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)


def _pool(endpoint: str) -> urllib3.PoolManager:
    """This thread's pool (one connection per thread: a call never waits for another's)."""
    pool = getattr(_local, "pool", None)
    if pool is None or _local.endpoint != endpoint:
        if pool is not None:
            pool.clear()
        pool = _local.pool = _new_pool(endpoint)
        _local.endpoint = endpoint
    return pool


def _dropped(exc: Urllib3Error) -> bool:
    """The connection broke under the request (not a time-out, not a refusal): most likely a
    kept-alive one the server closed just as we reused it."""
    return isinstance(exc.reason if isinstance(exc, MaxRetryError) else exc, ProtocolError)


class _Answer:
    """What the SDK reads of an answer: ``status_code`` and ``json()`` (its logger: ``content``, ``headers``)."""

    def __init__(self, response: urllib3.BaseHTTPResponse):
        self.status_code = response.status
        self.content = response.data
        self.headers = response.headers

    def json(self):
        return json.loads(self.content)


class _ApiClient(ApiClient):
    """The SDK's client, sending through this thread's kept-alive pool with a timeout."""

    def execute(self, body, method, path, query_params, request_headers):
        # In place of the SDK's ``execute`` (a new requests.Session per call, closed after it, and
        # charset detection on every answer for its logger); ``request`` still turns a non-200
        # answer into the SDK's ApiError, and any failure to get one into an AttributeError.
        self.log_request(body, method, path, query_params, request_headers)
        url = self.endpoint + path + (f"?{urlencode(query_params)}" if query_params else "")
        data = None if body is None else json.dumps(body, allow_nan=False).encode()
        pool = _pool(self.endpoint)
        try:
            response = pool.request(method, url, body=data, headers=request_headers)
        except Urllib3Error as exc:
            if not _dropped(exc):
                raise
            # Once more on a new connection. Safe: GETs change nothing and every POST carries
            # an Idempotence-Key.
            response = pool.request(method, url, body=data, headers=request_headers)
        answer = _Answer(response)
        if Configuration.logger:
            self.log_response(answer.content, {"status_code": answer.status_code}, answer.headers)
        return answer


class SdkPayment(_SdkPayment):
    def __init__(self):
        self.client = _ApiClient()


class SdkRefund(_SdkRefund):
    def __init__(self):
        self.client = _ApiClient()


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
            raise PaymentProviderUnavailable() from exc
        raise PaymentProviderRefused() from exc
    except (Urllib3Error, OSError, json.JSONDecodeError, AttributeError) as exc:
        # The SDK turns a connection error into AttributeError (it reads ``e.response`` of an
        # exception that has none), the real error in its context; a JSONDecodeError is an
        # answer that is not the API's (a proxy's error page).
        logger.warning("YooKassa API unreachable: %r", exc.__context__ if isinstance(exc, AttributeError) else exc)
        raise PaymentProviderUnavailable() from exc


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
