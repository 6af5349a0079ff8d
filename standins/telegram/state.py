"""The sandbox's state: its chats, the updates for the bot, Telegram's flood limits and every Bot
API method genbot uses (``SandboxState.call``)."""
from __future__ import annotations

import itertools
import json
import logging
import math
import threading
import time
import uuid

from standins.limits import SlidingWindow, admit

logger = logging.getLogger(__name__)

BOT_USER = {"id": 7000000001, "is_bot": True, "first_name": "genbot (sandbox)", "username": "genbot_sandbox_bot"}
# Telegram's limits, as (calls, in any so many seconds): about one message a second per chat, a
# short burst passing, and 30 a second or so overall. A sender pacing exactly one a second after
# a burst of two puts 12 sends into a closed 10 seconds, and one pacing exactly 30 a second puts
# 31 into a closed second, its threads' scheduling a few more: the limits leave it that room.
CHAT_BURST = (3, 1.0)
CHAT_PACE = (15, 10.0)
ALL_CHATS = (35, 1.0)
COUNTED_METHODS = {"sendMessage", "editMessageText", "editMessageReplyMarkup", "sendPhoto", "sendVideo", "sendDocument", "sendInvoice"}
MEDIA_METHODS = {"sendPhoto": "photo", "sendVideo": "video", "sendDocument": "document"}


class ApiError(Exception):
    def __init__(self, code: int, description: str, parameters: dict | None = None):
        super().__init__(description)
        self.code, self.description, self.parameters = code, description, parameters


class SandboxState:
    """Everything the server knows; every method is thread-safe."""

    def __init__(self, *, flood_limits: bool = True, clock=time.monotonic):
        self.cond = threading.Condition()
        self.flood_limits = flood_limits
        self.clock = clock  # what the flood limits measure time with
        self.chat_burst = SlidingWindow(limit=CHAT_BURST[0], seconds=CHAT_BURST[1])
        self.chat_pace = SlidingWindow(limit=CHAT_PACE[0], seconds=CHAT_PACE[1])
        self.all_chats = SlidingWindow(limit=ALL_CHATS[0], seconds=ALL_CHATS[1])
        self.updates: list[dict] = []
        self._update_ids = itertools.count(1)
        self.chats: dict[int, list[dict]] = {}
        self._message_ids: dict[int, itertools.count] = {}
        self.files: dict[str, tuple[bytes, str, str]] = {}
        # file_id -> seconds a download of that file waits before answering (a stalled server).
        self.stalled_files: dict[str, float] = {}
        self.pre_checkouts: dict[str, dict] = {}
        self.callback_answers: dict[str, dict] = {}
        self.refunds: list[dict] = []
        self.blocked_chats: set[int] = set()
        self.webhook: dict = {"url": "", "secret_token": ""}
        self.allowed_updates: list[str] | None = None
        self.stats = {"requests": 0, "messages": 0, "too_many_requests": 0}
        self.users: dict[int, dict] = {}
        self.forced_429: list[int] = []  # retry_after values to answer the next counted calls with
        self.tokens_seen: set[str] = set()
        # Called with (method, result) for every successful Bot API answer (tests check them
        # against Telegram's published types).
        self.on_answer = None

    # --- the person's side ------------------------------------------------------------------

    def user(self, chat_id: int, **profile) -> dict:
        with self.cond:
            user = self.users.setdefault(
                chat_id, {"id": chat_id, "is_bot": False, "first_name": f"User {chat_id}", "language_code": "ru"}
            )
            user.update({k: v for k, v in profile.items() if v})
            return dict(user)

    def _new_message(self, chat_id: int, *, outgoing: bool, **fields) -> dict:
        counter = self._message_ids.setdefault(chat_id, itertools.count(1))
        user = self.users.get(chat_id) or {"id": chat_id, "is_bot": False, "first_name": f"User {chat_id}"}
        message = {
            "message_id": next(counter),
            "from": BOT_USER if outgoing else user,
            "chat": {"id": chat_id, "type": "private", "first_name": user.get("first_name", "")},
            "date": int(time.time()),
            **fields,
        }
        self.chats.setdefault(chat_id, []).append(message)
        message["_seq"] = self._seq()
        return message

    def _seq(self) -> int:
        self._seq_value = getattr(self, "_seq_value", 0) + 1
        return self._seq_value

    def push_update(self, kind: str, payload: dict) -> dict:
        with self.cond:
            update = {"update_id": next(self._update_ids), kind: payload}
            self.updates.append(update)
            self.cond.notify_all()
            return update

    def push_raw_update(self, update: dict) -> dict:
        """An update exactly as given (malformed ones included), with a fresh update_id."""
        with self.cond:
            update = {**update, "update_id": next(self._update_ids)}
            self.updates.append(update)
            self.cond.notify_all()
            return update

    def user_sends(self, chat_id: int, text: str | None = None, **fields) -> dict:
        with self.cond:
            self.user(chat_id)
            if text is not None:
                fields["text"] = text
                if text.startswith("/"):
                    command = text.split()[0]
                    fields["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
            message = self._new_message(chat_id, outgoing=False, **fields)
            return self.push_update("message", _public(message))

    def user_sends_photo(self, chat_id: int, data: bytes, *, caption: str = "", mime: str = "image/png") -> dict:
        file_id = self.store_file(data, mime, "photo.png")
        photo = [{"file_id": file_id, "file_unique_id": file_id[:16], "width": 512, "height": 512, "file_size": len(data)}]
        fields = {"photo": photo}
        if caption:
            fields["caption"] = caption
        return self.user_sends(chat_id, **fields)

    def user_presses(self, chat_id: int, message_id: int, data: str) -> dict:
        with self.cond:
            message = self.find_message(chat_id, message_id)
            query = {
                "id": uuid.uuid4().hex[:16],
                "from": self.user(chat_id),
                "chat_instance": str(chat_id),
                "data": data,
                "message": _public(message) if message else None,
            }
            if query["message"] is None:
                query.pop("message")
            return self.push_update("callback_query", query)

    def user_pays_invoice(self, chat_id: int, message_id: int) -> dict:
        """Start a Stars payment: the bot gets a pre_checkout_query; its answer settles it."""
        with self.cond:
            message = self.find_message(chat_id, message_id)
            if message is None or "invoice" not in message:
                raise ApiError(400, "Bad Request: no invoice in that message")
            invoice = message["invoice"]
            query_id = uuid.uuid4().hex[:16]
            self.pre_checkouts[query_id] = {"chat_id": chat_id, "message_id": message_id, "answered": None}
            return self.push_update(
                "pre_checkout_query",
                {
                    "id": query_id,
                    "from": self.user(chat_id),
                    "currency": invoice["currency"],
                    "total_amount": invoice["total_amount"],
                    "invoice_payload": message["_payload"],
                },
            )

    # --- reads (the chat page, tests) --------------------------------------------------------

    def find_message(self, chat_id: int, message_id: int) -> dict | None:
        for message in self.chats.get(chat_id, []):
            if message["message_id"] == message_id:
                return message
        return None

    def messages(self, chat_id: int, *, after_seq: int = 0) -> list[dict]:
        with self.cond:
            return [dict(m) for m in self.chats.get(chat_id, []) if m["_seq"] > after_seq]

    def bot_messages(self, chat_id: int) -> list[dict]:
        return [m for m in self.messages(chat_id) if m["from"].get("is_bot")]

    def store_file(self, data: bytes, mime: str, name: str) -> str:
        file_id = "F" + uuid.uuid4().hex
        with self.cond:
            self.files[file_id] = (data, mime, name)
        return file_id

    # --- the Bot API ------------------------------------------------------------------------

    def call(self, method: str, params: dict, files: dict) -> object:
        with self.cond:
            self.stats["requests"] += 1
        handler = getattr(self, f"api_{method}", None)
        if handler is None:
            raise ApiError(404, "Not Found: method not found")
        if method in COUNTED_METHODS:
            self._check_flood(_chat_id(params))
        return handler(params, files)

    def _check_flood(self, chat_id: int) -> None:
        if chat_id in self.blocked_chats:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        with self.cond:
            if self.forced_429:
                retry_after = self.forced_429.pop(0)
            elif not self.flood_limits:
                return
            else:
                checks = ((self.chat_burst, chat_id), (self.chat_pace, chat_id), (self.all_chats, None))
                wait = admit(checks, now=self.clock())
                if not wait:
                    return
                retry_after = max(1, math.ceil(wait))
            self.stats["too_many_requests"] += 1
        raise ApiError(429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after})

    def api_getMe(self, params, files):
        return {**BOT_USER, "can_join_groups": False, "supports_inline_queries": False}

    def api_getUpdates(self, params, files):
        if self.webhook["url"]:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first")
        offset = int(params.get("offset") or 0)
        limit = min(100, int(params.get("limit") or 100))
        timeout = min(50.0, float(params.get("timeout") or 0))
        if params.get("allowed_updates"):
            allowed = params["allowed_updates"]
            self.allowed_updates = json.loads(allowed) if isinstance(allowed, str) else list(allowed)
        deadline = time.monotonic() + timeout
        with self.cond:
            if offset:
                self.updates = [u for u in self.updates if u["update_id"] >= offset] if offset > 0 else self.updates[offset:]
            while True:
                ready = [u for u in self.updates if self._allowed(u)][:limit]
                remaining = deadline - time.monotonic()
                if ready or remaining <= 0:
                    return ready
                self.cond.wait(remaining)

    def _allowed(self, update: dict) -> bool:
        if not self.allowed_updates:
            return True
        return any(kind in update for kind in self.allowed_updates) or not any(
            k for k in update if k != "update_id" and k in _UPDATE_KINDS
        )

    def api_setWebhook(self, params, files):
        with self.cond:
            self.webhook = {"url": params.get("url") or "", "secret_token": params.get("secret_token") or ""}
            if params.get("allowed_updates"):
                allowed = params["allowed_updates"]
                self.allowed_updates = json.loads(allowed) if isinstance(allowed, str) else list(allowed)
            if _truthy(params.get("drop_pending_updates")):
                self.updates.clear()
            self.cond.notify_all()
        return True

    def api_deleteWebhook(self, params, files):
        with self.cond:
            self.webhook = {"url": "", "secret_token": ""}
            if _truthy(params.get("drop_pending_updates")):
                self.updates.clear()
            self.cond.notify_all()
        return True

    def api_getWebhookInfo(self, params, files):
        return {"url": self.webhook["url"], "has_custom_certificate": False, "pending_update_count": len(self.updates)}

    def _bot_message(self, params: dict, **fields) -> dict:
        chat_id = _chat_id(params)
        markup = _json_param(params.get("reply_markup"))
        if markup:
            fields["reply_markup"] = markup
        with self.cond:
            message = self._new_message(chat_id, outgoing=True, **fields)
            self.stats["messages"] += 1
            self.cond.notify_all()
            return _public(message)

    def api_sendMessage(self, params, files):
        text = params.get("text") or ""
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        return self._bot_message(params, text=text)

    def api_editMessageText(self, params, files):
        return self._edit_bot_message(params, text=params.get("text") or "")

    def api_editMessageReplyMarkup(self, params, files):
        """Replace (or, with no or an empty keyboard, remove) the inline keyboard of a bot message."""
        return self._edit_bot_message(params)

    def _edit_bot_message(self, params: dict, *, text: str | None = None) -> dict:
        """Edit a message the bot sent: its text (when given) and its keyboard (none removes it)."""
        chat_id = _chat_id(params)
        message_id = int(params.get("message_id") or 0)
        markup = _json_param(params.get("reply_markup"))
        if markup is not None and not (markup.get("inline_keyboard") or []):
            markup = None
        with self.cond:
            message = self.find_message(chat_id, message_id)
            if message is None or not message["from"].get("is_bot"):
                raise ApiError(400, "Bad Request: message to edit not found")
            if (text is None or message.get("text") == text) and message.get("reply_markup") == markup:
                raise ApiError(400, "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message")
            if text is not None:
                message["text"] = text
            if markup:
                message["reply_markup"] = markup
            else:
                message.pop("reply_markup", None)
            message["edit_date"] = int(time.time())
            message["_seq"] = self._seq()
            self.stats["messages"] += 1
            self.cond.notify_all()
            return _public(message)

    def _send_media(self, method: str, params: dict, files: dict) -> dict:
        field = MEDIA_METHODS[method]
        if field in files:
            data, mime, name = files[field]
            file_id = self.store_file(data, mime, name)
        else:
            file_id = params.get(field) or ""
            if file_id not in self.files:
                raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
            data, mime, name = self.files[file_id]
        described = {"file_id": file_id, "file_unique_id": file_id[:16], "file_size": len(data)}
        if field == "photo":
            # PhotoSize has no mime_type (Telegram re-encodes photos as JPEG).
            payload = [{**described, "width": 512, "height": 512}]
        elif field == "video":
            # What the bot says about the video; without it, a stand-in for Telegram's own reading
            # of the file (Video's width, height and duration are required fields).
            sent = {key: int(params[key]) for key in ("width", "height", "duration") if params.get(key)}
            payload = {**described, "mime_type": mime, "width": 512, "height": 512, "duration": 5, **sent}
        else:
            payload = {**described, "mime_type": mime, "file_name": name}
        fields = {field: payload}
        if params.get("caption"):
            fields["caption"] = params["caption"]
        return self._bot_message(params, **fields)

    def api_sendPhoto(self, params, files):
        return self._send_media("sendPhoto", params, files)

    def api_sendVideo(self, params, files):
        return self._send_media("sendVideo", params, files)

    def api_sendDocument(self, params, files):
        return self._send_media("sendDocument", params, files)

    def api_sendInvoice(self, params, files):
        prices = _json_param(params.get("prices")) or []
        total = sum(int(p["amount"]) for p in prices)
        if not params.get("payload") or total <= 0:
            raise ApiError(400, "Bad Request: invoice payload and prices are required")
        invoice = {
            "title": params.get("title", ""),
            "description": params.get("description", ""),
            "start_parameter": params.get("start_parameter", ""),
            "currency": params.get("currency", "XTR"),
            "total_amount": total,
        }
        message = self._bot_message(params, invoice=invoice)
        with self.cond:
            self.find_message(message["chat"]["id"], message["message_id"])["_payload"] = params["payload"]
        return message

    def api_answerCallbackQuery(self, params, files):
        with self.cond:
            self.callback_answers[params.get("callback_query_id", "")] = dict(params)
            self.cond.notify_all()
        return True

    def api_answerPreCheckoutQuery(self, params, files):
        query_id = params.get("pre_checkout_query_id", "")
        with self.cond:
            pending = self.pre_checkouts.get(query_id)
            if pending is None:
                raise ApiError(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
            ok = _truthy(params.get("ok"))
            pending["answered"] = {"ok": ok, "error_message": params.get("error_message", "")}
            if ok:
                invoice_message = self.find_message(pending["chat_id"], pending["message_id"])
                invoice = invoice_message["invoice"]
                charge_id = "stxsandbox" + uuid.uuid4().hex[:20]
                self.user_sends(
                    pending["chat_id"],
                    successful_payment={
                        "currency": invoice["currency"],
                        "total_amount": invoice["total_amount"],
                        "invoice_payload": invoice_message["_payload"],
                        "telegram_payment_charge_id": charge_id,
                        "provider_payment_charge_id": "",
                    },
                )
            self.cond.notify_all()
        return True

    def api_refundStarPayment(self, params, files):
        with self.cond:
            self.refunds.append(dict(params))
        return True

    def api_getFile(self, params, files):
        file_id = params.get("file_id", "")
        if file_id not in self.files:
            raise ApiError(400, "Bad Request: invalid file_id")
        data, mime, name = self.files[file_id]
        return {"file_id": file_id, "file_unique_id": file_id[:16], "file_size": len(data), "file_path": f"files/{file_id}"}

    def api_setMyCommands(self, params, files):
        return True


_UPDATE_KINDS = {"message", "edited_message", "callback_query", "pre_checkout_query", "shipping_query",
                 "inline_query", "chosen_inline_result", "channel_post", "my_chat_member", "chat_member"}


def _public(message: dict | None) -> dict | None:
    if message is None:
        return None
    return {k: v for k, v in message.items() if not k.startswith("_")}


def _chat_id(params: dict) -> int:
    try:
        return int(params.get("chat_id"))
    except (TypeError, ValueError):
        raise ApiError(400, "Bad Request: chat not found") from None


def _json_param(value):
    if value in (None, ""):
        return None
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise ApiError(400, "Bad Request: can't parse JSON parameter") from None
    return value


def _truthy(value) -> bool:
    return value in (True, "true", "True", "1", 1)

