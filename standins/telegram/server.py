"""The sandbox's HTTP side: the Bot API endpoints, the browser chat page and the webhook pusher."""
from __future__ import annotations

import email.parser
import email.policy
import json
import logging
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import requests

from .state import BOT_USER, ApiError, SandboxState

logger = logging.getLogger(__name__)


def parse_body(content_type: str, body: bytes) -> tuple[dict, dict]:
    """Form fields and files of a request body (JSON, urlencoded or multipart)."""
    params: dict = {}
    files: dict = {}
    if not body:
        return params, files
    if content_type.startswith("application/json"):
        data = json.loads(body or b"{}")
        return {k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in data.items()}, files
    if content_type.startswith("multipart/form-data"):
        parser = email.parser.BytesParser(policy=email.policy.HTTP)
        message = parser.parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            filename = part.get_filename()
            payload = part.get_payload(decode=True) or b""
            if filename is not None:
                files[name] = (payload, part.get_content_type(), filename)
            else:
                params[name] = payload.decode("utf-8")
        return params, files
    return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True)), files


class _Handler(BaseHTTPRequestHandler):
    server: "_HTTPServer"
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle's algorithm on, keep-alive clients would
    # wait ~40 ms for a delayed ACK on every call.
    disable_nagle_algorithm = True

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        logger.debug("sandbox %s", format % args)

    def do_GET(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def _dispatch(self):
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        try:
            extra, files = parse_body(self.headers.get("Content-Type", ""), body)
        except ValueError:
            return self._json(400, {"ok": False, "error_code": 400, "description": "Bad Request: can't parse body"})
        params.update(extra)
        state = self.server.state
        api = re.match(r"^/bot(?P<token>[^/]*)/(?P<method>\w+)$", url.path)
        if api:
            state.tokens_seen.add(api["token"])
            try:
                result = state.call(api["method"], params, files)
            except ApiError as exc:
                body = {"ok": False, "error_code": exc.code, "description": exc.description}
                if exc.parameters:
                    body["parameters"] = exc.parameters
                return self._json(exc.code, body)
            if state.on_answer is not None:
                state.on_answer(api["method"], result)
            return self._json(200, {"ok": True, "result": result})
        download = re.match(r"^/(?:file/bot[^/]+/files|sandbox/file)/(?P<file_id>\w+)$", url.path)
        if download:
            item = state.files.get(download["file_id"])
            if item is None:
                return self._json(404, {"ok": False, "error_code": 404, "description": "Not Found"})
            data, mime, _name = item
            stall = state.stalled_files.get(download["file_id"])
            if stall:
                time.sleep(stall)
            try:
                return self._send(200, data, mime)
            except (BrokenPipeError, ConnectionResetError):
                return None  # the bot gave up waiting
        try:
            if url.path in ("/", "/chat", "/chat/"):
                return self._send(200, render_chat_page().encode(), "text/html; charset=utf-8")
            if url.path == "/sandbox/api/messages":
                chat_id = int(params["chat_id"])
                after = int(params.get("after") or 0)
                messages = state.messages(chat_id, after_seq=after)
                return self._json(200, {"ok": True, "messages": messages})
            if url.path == "/sandbox/api/send":
                chat_id = int(params["chat_id"])
                state.user(chat_id, first_name=params.get("first_name"), language_code=params.get("language_code"))
                if "photo" in files:
                    data, mime, _name = files["photo"]
                    state.user_sends_photo(chat_id, data, caption=params.get("text", ""), mime=mime)
                else:
                    state.user_sends(chat_id, params.get("text", ""))
                return self._json(200, {"ok": True})
            if url.path == "/sandbox/api/send_batch":
                # Many messages at once (benchmarks): {"messages": [{"chat_id", "text", ...}, ...]}.
                for item in json.loads(params["messages"]):
                    chat_id = int(item["chat_id"])
                    state.user(chat_id, first_name=item.get("first_name"), language_code=item.get("language_code"))
                    state.user_sends(chat_id, item.get("text", ""))
                return self._json(200, {"ok": True})
            if url.path == "/sandbox/api/press":
                state.user_presses(int(params["chat_id"]), int(params["message_id"]), params["data"])
                return self._json(200, {"ok": True})
            if url.path == "/sandbox/api/pay":
                state.user_pays_invoice(int(params["chat_id"]), int(params["message_id"]))
                return self._json(200, {"ok": True})
            if url.path == "/sandbox/api/stats":
                return self._json(200, {"ok": True, **state.stats})
        except (KeyError, ValueError) as exc:
            return self._json(400, {"ok": False, "error_code": 400, "description": f"Bad Request: {exc}"})
        except ApiError as exc:
            return self._json(exc.code, {"ok": False, "error_code": exc.code, "description": exc.description})
        return self._json(404, {"ok": False, "error_code": 404, "description": "Not Found"})

    def _json(self, status: int, payload: dict):
        self._send(status, json.dumps(payload, ensure_ascii=False).encode(), "application/json")

    def _send(self, status: int, data: bytes, content_type: str):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)


def render_chat_page() -> str:
    from django.template.loader import render_to_string

    return render_to_string("standins/telegram_chat.html", {"bot": BOT_USER})


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, state: SandboxState):
        self.state = state
        super().__init__(address, _Handler)


class SandboxServer:
    """The sandbox HTTP server; ``start()`` runs it in daemon threads and returns its URL."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, flood_limits: bool = True):
        self.state = SandboxState(flood_limits=flood_limits)
        self.httpd = _HTTPServer((host, port), self.state)
        self.host, self.port = self.httpd.server_address[:2]
        self.url = f"http://{self.host}:{self.port}"
        self._threads: list[threading.Thread] = []
        self._stopped = threading.Event()

    def start(self) -> "SandboxServer":
        serve = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2}, name="sandbox-http", daemon=True)
        push = threading.Thread(target=self._push_webhooks, name="sandbox-webhook", daemon=True)
        self._threads = [serve, push]
        for thread in self._threads:
            thread.start()
        return self

    def serve_forever(self) -> None:
        self.start()
        try:
            while not self._stopped.wait(0.5):
                pass
        finally:
            self.stop()

    def stop(self) -> None:
        self._stopped.set()
        with self.state.cond:
            self.state.cond.notify_all()
        self.httpd.shutdown()
        self.httpd.server_close()

    def _push_webhooks(self) -> None:
        """While a webhook is set, POST each update to it (with the secret header) until it answers 200."""
        session = requests.Session()
        state = self.state
        while not self._stopped.is_set():
            with state.cond:
                while not self._stopped.is_set() and not (state.webhook["url"] and state.updates):
                    state.cond.wait(0.5)
                if self._stopped.is_set():
                    return
                update, hook = state.updates[0], dict(state.webhook)
            headers = {"X-Telegram-Bot-Api-Secret-Token": hook["secret_token"]} if hook["secret_token"] else {}
            try:
                answer = session.post(hook["url"], json=update, headers=headers, timeout=30)
                delivered = answer.status_code == 200
            except requests.RequestException:
                delivered = False
            with state.cond:
                if delivered and state.updates and state.updates[0] is update:
                    state.updates.pop(0)
            if not delivered:
                self._stopped.wait(1)
