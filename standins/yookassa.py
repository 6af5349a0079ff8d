"""A local YooKassa: enough of API v3 for the real SDK, plus a fake checkout page.

Used by the tests (``YooKassaStub(port=0).start()`` runs it in a thread) and by offline runs
(``python manage.py yookassa_stub --port 8082``). It speaks what the SDK expects:

- ``POST /v3/payments``, ``GET /v3/payments/{id}``, ``POST /v3/refunds``, ``GET /v3/refunds/{id}``
  with HTTP Basic auth (shop id : secret key; 401 otherwise) and Idempotence-Key semantics (a
  POST repeated with the same key returns the first answer; POST without one is a 400);
- ``GET /checkout/{payment id}``: the confirmation_url, a page with Pay and Cancel buttons;
  ``POST /checkout/{payment id}`` marks the payment succeeded or canceled, sends the matching
  notification to the webhook URL and redirects to the payment's return_url.

Tests drive it from Python: ``mark_succeeded`` / ``mark_canceled`` (optionally notifying),
``send_notification``, ``update_payment`` (make the API say something else), ``fail_next``
(answer the next API calls with a 5xx), ``calls`` (what the SDK asked) and ``connections``.

Like YooKassa it answers a shop that calls too often with HTTP 429 and its error JSON
(``"code": "too_many_requests"``): at most ``rate_limit`` = (calls, seconds) per shop (per
Authorization header), generous by default so that only a runaway client meets it.
"""
from __future__ import annotations

import base64
import html
import json
import logging
import threading
import time
import uuid
from collections import Counter
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import requests
from django.conf import settings

from standins.limits import SlidingWindow, admit
from standins.stubserver import STOP_POLL_SECONDS

logger = logging.getLogger(__name__)

# API calls one shop may make, as (calls, in any so many seconds). YooKassa publishes no figure;
# this one is far above what the bot, the tests and the benchmarks send.
RATE_LIMIT = (2000, 1.0)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _cents(value) -> int:
    return int((Decimal(str(value)) * 100).to_integral_value())


def _money(cents: int, currency: str = "RUB") -> dict:
    return {"value": f"{cents // 100}.{cents % 100:02d}", "currency": currency}


class StubError(Exception):
    def __init__(self, status: int, code: str, description: str):
        super().__init__(description)
        self.status, self.code, self.description = status, code, description

    def body(self) -> dict:
        return {"type": "error", "id": str(uuid.uuid4()), "code": self.code, "description": self.description}


class YooKassaStub:
    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, shop_id: str | None = None,
        secret_key: str | None = None, webhook_url: str = "", refund_status: str = "succeeded",
        rate_limit: tuple[int, float] = RATE_LIMIT, clock=time.monotonic,
    ):
        self.host, self.port = host, port
        # The shop the product is configured with (settings' demo shop in offline runs), so the
        # demo credentials are written once, in settings.
        self.shop_id = settings.YOOKASSA_SHOP_ID if shop_id is None else shop_id
        self.secret_key = settings.YOOKASSA_SECRET_KEY if secret_key is None else secret_key
        self.webhook_url = webhook_url
        # What a new refund's status is: "succeeded" (cards, at once), "pending" or "canceled".
        self.refund_status = refund_status
        self.payments: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}
        self.calls: Counter = Counter()
        # TCP connections accepted: tests check that the client keeps one alive.
        self.connections = 0
        self.last_receipt: dict | None = None
        self._idempotence: dict[tuple[str, str], tuple[int, dict]] = {}
        self._failures: list[int] = []
        self._rate = SlidingWindow(limit=rate_limit[0], seconds=rate_limit[1])
        self._clock = clock
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> YooKassaStub:
        self._server = ThreadingHTTPServer((self.host, self.port), _handler_for(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": STOP_POLL_SECONDS},
                                        name="yookassa-stub", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server = ThreadingHTTPServer((self.host, self.port), _handler_for(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._server.serve_forever()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> YooKassaStub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/v3"

    # --- test controls ------------------------------------------------------------------------

    def fail_next(self, count: int = 1, status: int = 500) -> None:
        """Answer the next ``count`` API calls with ``status`` (a provider outage)."""
        with self._lock:
            self._failures.extend([status] * count)

    def update_payment(self, payment_id: str, **fields) -> dict:
        """Change what the API says about a payment (e.g. another amount), without notifying."""
        with self._lock:
            self.payments[payment_id].update(fields)
            return dict(self.payments[payment_id])

    def mark_succeeded(self, payment_id: str, *, notify: bool = True) -> dict:
        with self._lock:
            payment = self.payments[payment_id]
            if payment["status"] == "pending":
                payment.update(
                    status="succeeded", paid=True, refundable=True, captured_at=_now(),
                    income_amount=dict(payment["amount"]),
                    payment_method={"type": "bank_card", "id": payment_id, "saved": False,
                                    "title": "Bank card *4444"},
                )
            payment = dict(payment)
        if notify:
            self.send_notification("payment.succeeded", payment)
        return payment

    def mark_canceled(self, payment_id: str, *, notify: bool = True, reason: str = "expired_on_confirmation") -> dict:
        with self._lock:
            payment = self.payments[payment_id]
            if payment["status"] == "pending":
                payment.update(status="canceled", cancellation_details={"party": "yoo_money", "reason": reason})
            payment = dict(payment)
        if notify:
            self.send_notification("payment.canceled", payment)
        return payment

    def mark_refund_succeeded(self, refund_id: str, *, notify: bool = True) -> dict:
        with self._lock:
            refund = self.refunds[refund_id]
            if refund["status"] == "pending":
                refund["status"] = "succeeded"
                self._book_refund(refund)
            refund = dict(refund)
        if notify:
            self.send_notification("refund.succeeded", refund)
        return refund

    @staticmethod
    def notification(event: str, obj: dict) -> dict:
        """The notification JSON YooKassa posts for ``event`` about ``obj``."""
        return {"type": "notification", "event": event, "object": obj}

    def send_notification(self, event: str, obj: dict, *, url: str | None = None) -> int:
        """POST the notification to the webhook; returns the HTTP status (0 when unreachable)."""
        target = url or self.webhook_url
        if not target:
            return 0
        try:
            return requests.post(target, json=self.notification(event, obj), timeout=30).status_code
        except requests.RequestException as exc:
            logger.warning("stub: notification to %s failed: %r", target, exc)
            return 0

    # --- the API ------------------------------------------------------------------------------

    def handle_api(self, method: str, path: str, headers, body: bytes) -> tuple[int, dict]:
        with self._lock:
            self.calls[(method, path.rsplit("/", 1)[0] if path.count("/") > 2 else path)] += 1
            if admit([(self._rate, headers.get("Authorization", ""))], now=self._clock()) > 0:
                return 429, StubError(429, "too_many_requests", "Too many requests. Try again later").body()
            if self._failures:
                status = self._failures.pop(0)
                return status, StubError(status, "internal_server_error", "stub outage").body()
        try:
            self._check_auth(headers.get("Authorization", ""))
            if method == "POST":
                key = headers.get("Idempotence-Key", "")
                if not key:
                    raise StubError(400, "invalid_request", "Idempotence-Key header is required")
                with self._lock:
                    remembered = self._idempotence.get((path, key))
                    if remembered is not None:
                        return remembered
                    answer = self._post(path, _json(body))
                    self._idempotence[(path, key)] = answer
                    return answer
            if method == "GET":
                return self._get(path)
            raise StubError(405, "invalid_request", "method not allowed")
        except StubError as exc:
            return exc.status, exc.body()

    def _check_auth(self, header: str) -> None:
        expected = "Basic " + base64.b64encode(f"{self.shop_id}:{self.secret_key}".encode()).decode()
        if header != expected:
            raise StubError(401, "invalid_credentials", "Authentication by given credentials failed")

    def _post(self, path: str, data: dict) -> tuple[int, dict]:
        if path == "/v3/payments":
            return 200, self._create_payment(data)
        if path == "/v3/refunds":
            return 200, self._create_refund(data)
        raise StubError(404, "not_found", "unknown endpoint")

    def _get(self, path: str) -> tuple[int, dict]:
        parts = path.strip("/").split("/")
        if len(parts) == 3 and parts[:2] == ["v3", "payments"] and parts[2] in self.payments:
            return 200, dict(self.payments[parts[2]])
        if len(parts) == 3 and parts[:2] == ["v3", "refunds"] and parts[2] in self.refunds:
            return 200, dict(self.refunds[parts[2]])
        raise StubError(404, "not_found", "object not found")

    def _amount(self, data: dict) -> dict:
        amount = data.get("amount") or {}
        try:
            cents = _cents(amount.get("value"))
        except (InvalidOperation, TypeError, ValueError):
            raise StubError(400, "invalid_request", "amount.value is invalid") from None
        if cents <= 0 or amount.get("currency") != "RUB":
            raise StubError(400, "invalid_request", "amount must be positive RUB")
        return _money(cents)

    def _create_payment(self, data: dict) -> dict:
        amount = self._amount(data)
        confirmation = data.get("confirmation") or {}
        if confirmation.get("type") != "redirect":
            raise StubError(400, "invalid_request", "only redirect confirmation is supported")
        receipt = data.get("receipt")
        if receipt is not None:
            customer = receipt.get("customer") or {}
            items = receipt.get("items") or []
            if not (customer.get("email") or customer.get("phone")) or not items:
                raise StubError(400, "invalid_request", "receipt needs a customer contact and items")
            if any("vat_code" not in item for item in items):
                raise StubError(400, "invalid_request", "receipt item without vat_code")
        payment_id = f"{uuid.uuid4().hex[:8]}-000f-5000-8000-{uuid.uuid4().hex[:12]}"
        payment = {
            "id": payment_id,
            "status": "pending",
            "paid": False,
            "amount": amount,
            "confirmation": {
                "type": "redirect",
                "return_url": confirmation.get("return_url", ""),
                "confirmation_url": f"{self.url}/checkout/{payment_id}",
            },
            "created_at": _now(),
            "description": data.get("description", ""),
            "metadata": data.get("metadata") or {},
            "recipient": {"account_id": self.shop_id, "gateway_id": "100700"},
            "refundable": False,
            "refunded_amount": _money(0),
            "test": True,
        }
        if receipt is not None:
            payment["receipt_registration"] = "pending"
        self.payments[payment_id] = payment
        self.last_receipt = receipt
        return dict(payment)

    def _create_refund(self, data: dict) -> dict:
        payment = self.payments.get(str(data.get("payment_id", "")))
        if payment is None:
            raise StubError(400, "invalid_request", "payment_id is unknown")
        amount = self._amount(data)
        if payment["status"] != "succeeded":
            raise StubError(400, "invalid_request", "payment is not succeeded")
        refunded = _cents(payment["refunded_amount"]["value"])
        pending = sum(
            _cents(r["amount"]["value"]) for r in self.refunds.values()
            if r["payment_id"] == payment["id"] and r["status"] == "pending"
        )
        if _cents(amount["value"]) + refunded + pending > _cents(payment["amount"]["value"]):
            raise StubError(400, "invalid_request", "refund amount exceeds the payment")
        refund = {
            "id": f"{uuid.uuid4().hex[:8]}-0015-5000-9000-{uuid.uuid4().hex[:12]}",
            "payment_id": payment["id"],
            "status": self.refund_status,
            "created_at": _now(),
            "amount": amount,
            "description": data.get("description", ""),
        }
        if refund["status"] == "canceled":
            refund["cancellation_details"] = {"party": "yoo_money", "reason": "rejected_by_payee"}
        self.refunds[refund["id"]] = refund
        if refund["status"] == "succeeded":
            self._book_refund(refund)
        return dict(refund)

    def _book_refund(self, refund: dict) -> None:
        payment = self.payments[refund["payment_id"]]
        total = _cents(payment["refunded_amount"]["value"]) + _cents(refund["amount"]["value"])
        payment["refunded_amount"] = _money(total)

    # --- the checkout page --------------------------------------------------------------------

    def checkout_page(self, payment_id: str) -> tuple[int, str]:
        payment = self.payments.get(payment_id)
        if payment is None:
            return 404, "<h1>Payment not found</h1>"
        value = html.escape(payment["amount"]["value"])
        description = html.escape(payment.get("description", ""))
        status = html.escape(payment["status"])
        buttons = (
            '<form method="post"><button name="action" value="pay">Pay</button> '
            '<button name="action" value="cancel">Cancel</button></form>'
            if payment["status"] == "pending" else f"<p>This payment is {status}.</p>"
        )
        return 200, (
            "<!doctype html><html><head><meta charset='utf-8'><title>YooKassa (local stub)</title></head>"
            "<body style='font-family:sans-serif;max-width:28em;margin:3em auto'>"
            "<h1>YooKassa checkout <small>(local stub)</small></h1>"
            f"<p>{description}</p><p><strong>{value} ₽</strong></p>{buttons}</body></html>"
        )

    def checkout_action(self, payment_id: str, action: str) -> str | None:
        """Pay or cancel from the page; returns the return URL (None: unknown payment)."""
        if payment_id not in self.payments:
            return None
        if action == "pay":
            self.mark_succeeded(payment_id)
        elif action == "cancel":
            self.mark_canceled(payment_id, reason="canceled_by_merchant")
        return self.payments[payment_id]["confirmation"].get("return_url") or f"{self.url}/checkout/{payment_id}"


def _json(body: bytes) -> dict:
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        raise StubError(400, "invalid_request", "body is not JSON") from None
    if not isinstance(data, dict):
        raise StubError(400, "invalid_request", "body is not a JSON object")
    return data


def _handler_for(stub: YooKassaStub):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out as two writes; on a kept-alive connection Nagle's algorithm
        # would hold the body until the client's delayed ACK (~40 ms). Real servers set this too.
        disable_nagle_algorithm = True

        def setup(self):
            super().setup()
            with stub._lock:
                stub.connections += 1

        def log_message(self, fmt, *args):  # quiet: tests and benchmarks would drown in it
            logger.debug("stub: " + fmt, *args)

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _send(self, status: int, body: bytes, content_type: str, extra: dict | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _route(self, method: str) -> None:
            path = self.path.split("?", 1)[0]
            body = self._body()
            if path.startswith("/v3/"):
                status, data = stub.handle_api(method, path, self.headers, body)
                self._send(status, json.dumps(data).encode(), "application/json")
            elif path.startswith("/checkout/") and method == "GET":
                status, page = stub.checkout_page(path.rsplit("/", 1)[1])
                self._send(status, page.encode(), "text/html; charset=utf-8")
            elif path.startswith("/checkout/") and method == "POST":
                action = parse_qs(body.decode()).get("action", [""])[0]
                target = stub.checkout_action(path.rsplit("/", 1)[1], action)
                if target is None:
                    self._send(404, b"not found", "text/plain")
                else:
                    self._send(303, b"", "text/plain", {"Location": target})
            else:
                self._send(404, b'{"type":"error","code":"not_found"}', "application/json")

        def do_GET(self):  # noqa: N802 - http.server's naming
            self._route("GET")

        def do_POST(self):  # noqa: N802
            self._route("POST")

    return Handler
