"""The YooKassa webhook. Thin: check the sender, parse, call the service, answer.

Answers: 403 sender outside YOOKASSA_ALLOWED_IPS; 400 not a notification (nothing changes);
503 the API could not be asked (YooKassa retries); 200 otherwise, including repeats, events we
do not act on and payments that are not ours (YooKassa would retry a non-200 for a day).
"""
import ipaddress
import logging
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from genbot.jsonbody import parse_json_body

from . import services
from .exceptions import PaymentProviderError

logger = logging.getLogger(__name__)


@lru_cache(maxsize=8)
def _networks(allowed: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in allowed if item.strip())


def client_ip(request: HttpRequest) -> str | None:
    """The sender's address: REMOTE_ADDR, or the X-Forwarded-For hop the last trusted proxy saw.

    With TRUSTED_PROXY_COUNT = n, the n-th entry from the right of X-Forwarded-For was written by
    our outermost proxy; anything left of it is whatever the sender claimed and is ignored.
    """
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies <= 0:
        return request.META.get("REMOTE_ADDR")
    hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
    return hops[-proxies] if len(hops) >= proxies else None


def is_allowed_sender(ip: str | None) -> bool:
    if not ip:
        return False
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in _networks(tuple(settings.YOOKASSA_ALLOWED_IPS)))


def _parse_notification(body: bytes) -> tuple[str, str]:
    """(event, object id) of a notification; ValueError when it is not one.

    Nothing else in the body is used (the API is asked what happened), so nothing else is
    checked: building the SDK's notification objects for it cost more than answering a repeat.
    """
    data = parse_json_body(body)
    if not isinstance(data, dict) or data.get("type") != "notification":
        raise ValueError("not a notification")
    event, obj = data.get("event"), data.get("object")
    object_id = obj.get("id") if isinstance(obj, dict) else None
    if not isinstance(event, str) or not event or not isinstance(object_id, str) or not object_id:
        raise ValueError("notification without an event or an object id")
    return event, object_id


@csrf_exempt
@require_POST
def yookassa_webhook(request: HttpRequest) -> HttpResponse:
    ip = client_ip(request)
    if not is_allowed_sender(ip):
        logger.warning("YooKassa webhook from %s refused: not in YOOKASSA_ALLOWED_IPS", ip)
        return JsonResponse({"error": "forbidden"}, status=403)
    try:
        event, object_id = _parse_notification(request.body)
    except ValueError:  # not JSON, not UTF-8, nested too deep, not a notification
        logger.warning("YooKassa webhook from %s: malformed notification refused", ip)
        return JsonResponse({"error": "malformed notification"}, status=400)
    try:
        services.handle_yookassa_notification(event=event, object_id=object_id)
    except PaymentProviderError:
        return JsonResponse({"error": "payment service unavailable, retry"}, status=503)
    return JsonResponse({"ok": True})

