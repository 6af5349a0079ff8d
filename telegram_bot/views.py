"""The Telegram webhook: checks the secret header, then feeds the update to the bot.

Answers: 403 wrong secret; 400 a body that is not JSON or nests too deep (genbot.jsonbody);
200 otherwise, also for JSON that is no valid update (Telegram would resend it forever).
"""
from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.http import Http404, HttpResponse, HttpResponseBadRequest, HttpResponseForbidden, HttpResponseRedirect
from django.utils.crypto import constant_time_compare
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from genbot.jsonbody import MalformedJSON, parse_json_body
from telegram_bot.bot import build_bot, parse_updates

logger = logging.getLogger(__name__)

_bot = None
_bot_lock = threading.Lock()


def webhook_bot():
    """One non-threaded bot per web process: the update is handled inside the request."""
    global _bot
    with _bot_lock:
        if _bot is None:
            _bot = build_bot(threaded=False)
        return _bot


@csrf_exempt
@require_POST
def telegram_webhook(request):
    secret = settings.TELEGRAM_WEBHOOK_SECRET
    given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
    if not secret or not constant_time_compare(given, secret):
        return HttpResponseForbidden("wrong secret token")
    try:
        payload = parse_json_body(request.body)
    except MalformedJSON as exc:
        # Telegram only ever sends JSON: this is no update it would resend.
        logger.warning("webhook: malformed body refused: %s", exc)
        return HttpResponseBadRequest("malformed body")
    updates = parse_updates([payload] if isinstance(payload, dict) else [])
    if updates:
        webhook_bot().process_new_updates(updates)
    # 200 even for a skipped update: Telegram would otherwise resend it forever.
    return HttpResponse("ok")


def chat_page(request):
    """/chat/: the local sandbox's chat page, when the bot talks to a local Bot API server."""
    api_url = settings.TELEGRAM_API_URL
    if "api.telegram.org" in api_url:
        raise Http404("the bot talks to Telegram: open it in a Telegram app")
    return HttpResponseRedirect(f"{api_url}/")
