"""Local HTTP servers speaking the Gemini and Kling protocols, so the real clients are tested.

Each stub runs in a thread on 127.0.0.1 (port 0 picks a free port) and answers like the real
API: it checks the key (Gemini's ``x-goog-api-key``; Kling's HS256 JWT with ``iss``/``exp``/
``nbf``), the path and the body shape. What the next requests get is scripted with
``stub.script("rate_limit", "success")``; when the script is empty, requests succeed.

Gemini behaviours: success, prompt_blocked, image_safety, no_image, rate_limit, server_error,
bad_request, timeout, malformed.
Kling behaviours (per created task): success, safety, rate_limit, concurrency_limit,
server_error, billing, task_failed, timeout, malformed, expired_url, poll_error (one 500 on a
poll, then success), poll_down (every poll 500). The task's video URL: flaky_download (500
twice, then the video), redirect_home (a relative redirect to itself, then the video),
redirect_private / redirect_link_local (a redirect to 10.0.0.7 / 169.254.169.254),
slow_download (the video dripped in pieces, ``slow_seconds`` in all), unsized_download (chunked,
no Content-Length).
"""
from __future__ import annotations

import base64
import io
import itertools
import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import jwt
from PIL import Image

# A tiny but real MP4 would need ffmpeg; the stub's "video" only has to be bytes the client saves.
STUB_VIDEO = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64


def stub_png(colour=(30, 120, 200)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), colour).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass(frozen=True)
class StreamedBody:
    """A body sent in ``pieces`` with ``pause`` seconds between them; chunked when not ``sized``."""

    pieces: tuple[bytes, ...]
    pause: float = 0.0
    sized: bool = True
    headers: tuple[tuple[str, str], ...] = ()


class StubServer:
    """A threaded HTTP server with a script of behaviours and a log of the requests it got."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, slow_seconds: float = 2.0):
        self.script_queue: deque[str] = deque()
        self.requests: list[dict] = []
        self.slow_seconds = slow_seconds
        self.lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                stub._dispatch(self, "GET")

            def do_POST(self):
                stub._dispatch(self, "POST")

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name=type(self).__name__, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> StubServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def script(self, *behaviours: str) -> None:
        with self.lock:
            self.script_queue.extend(behaviours)

    def next_behaviour(self) -> str:
        with self.lock:
            return self.script_queue.popleft() if self.script_queue else "success"

    # --- plumbing ---

    def _dispatch(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        record = {"method": method, "path": handler.path, "headers": dict(handler.headers), "body": body}
        with self.lock:
            self.requests.append(record)
        status, payload, content_type, delay = self.handle(method, handler.path, dict(handler.headers), body)
        if delay:
            time.sleep(delay)
        if not isinstance(payload, StreamedBody):
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            payload = StreamedBody((data,))
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", content_type)
            for name, value in payload.headers:
                handler.send_header(name, value)
            if payload.sized:
                handler.send_header("Content-Length", str(sum(len(piece) for piece in payload.pieces)))
            else:
                handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            for index, piece in enumerate(payload.pieces):
                if index and payload.pause:
                    handler.wfile.flush()
                    time.sleep(payload.pause)
                handler.wfile.write(piece if payload.sized else b"%x\r\n%s\r\n" % (len(piece), piece))
            if not payload.sized:
                handler.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a time-out test)

    def handle(self, method, path, headers, body):
        """Subclasses answer with (status, JSON-able or bytes, content type, delay seconds)."""
        return 501, {"error": "this stub speaks no protocol"}, "application/json", 0


JSON = "application/json"


class GeminiStub(StubServer):
    """``POST /v1beta/models/{model}:generateContent`` like Google's Generative Language API."""

    def __init__(self, *, api_key: str = "test-gemini-key", model: str = "gemini-2.5-flash-image", **kwargs):
        super().__init__(**kwargs)
        self.api_key = api_key
        self.model = model

    @staticmethod
    def error(status: int, code: str, message: str):
        return status, {"error": {"code": status, "message": message, "status": code}}, JSON, 0

    def handle(self, method, path, headers, body):
        if method != "POST" or path != f"/v1beta/models/{self.model}:generateContent":
            return self.error(404, "NOT_FOUND", f"{path} not found")
        if headers.get("x-goog-api-key") != self.api_key:
            return self.error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.")
        try:
            parts = body["contents"][0]["parts"]
            modalities = body["generationConfig"]["responseModalities"]
        except (KeyError, IndexError, TypeError):
            return self.error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        if "IMAGE" not in modalities or not any("text" in part for part in parts):
            return self.error(400, "INVALID_ARGUMENT", "Request must ask for IMAGE and carry a prompt.")
        behaviour = self.next_behaviour()
        if behaviour == "rate_limit":
            return self.error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).")
        if behaviour == "server_error":
            return self.error(500, "INTERNAL", "An internal error has occurred.")
        if behaviour == "bad_request":
            return self.error(400, "INVALID_ARGUMENT", "Unsupported MIME type.")
        if behaviour == "malformed":
            return 200, b"<html>upstream connect error</html>", "text/html", 0
        if behaviour == "timeout":
            return 200, {"candidates": []}, JSON, self.slow_seconds
        if behaviour == "prompt_blocked":
            return 200, {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}, JSON, 0
        if behaviour == "image_safety":
            return 200, {"candidates": [{"content": {"parts": [], "role": "model"}, "finishReason": "IMAGE_SAFETY"}]}, JSON, 0
        if behaviour == "no_image":
            return 200, {"candidates": [{"content": {"parts": [{"text": "I cannot draw that."}], "role": "model"},
                                         "finishReason": "STOP"}]}, JSON, 0
        image = base64.b64encode(stub_png()).decode()
        return 200, {
            "candidates": [{
                "content": {"role": "model", "parts": [
                    {"text": "Here is your picture."},
                    {"inlineData": {"mimeType": "image/png", "data": image}},
                ]},
                "finishReason": "STOP",
                "index": 0,
            }],
            "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 1290},
        }, JSON, 0


class KlingStub(StubServer):
    """Kling's video task API: create, poll until succeed/failed, download the video."""

    POLLS_BEFORE_DONE = 2

    def __init__(self, *, access_key: str = "test-access-key", secret_key: str = "test-secret-key-of-32-characters", **kwargs):
        super().__init__(**kwargs)
        self.access_key = access_key
        self.secret_key = secret_key
        self.tasks: dict[str, dict] = {}
        self.ids = itertools.count(860000000000000001)

    @staticmethod
    def answer(status: int, code: int, message: str, data=None, delay: float = 0):
        return status, {"code": code, "message": message, "request_id": "stub-request", "data": data}, JSON, delay

    def check_token(self, headers) -> tuple | None:
        auth = headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return self.answer(401, 1001, "Authorization is empty")
        try:
            claims = jwt.decode(auth[7:], self.secret_key, algorithms=["HS256"], options={"require": ["iss", "exp", "nbf"]})
        except jwt.ExpiredSignatureError:
            return self.answer(401, 1004, "Authorization has expired")
        except jwt.PyJWTError:
            return self.answer(401, 1002, "Authorization is invalid")
        if claims.get("iss") != self.access_key:
            return self.answer(401, 1002, "Authorization is invalid")
        return None

    def handle(self, method, path, headers, body):
        if method == "GET" and path.startswith("/files/"):
            return self.video(urlsplit(path))
        refused = self.check_token(headers)
        if refused:
            return refused
        parts = path.strip("/").split("/")
        if len(parts) < 3 or parts[:2] != ["v1", "videos"] or parts[2] not in ("text2video", "image2video"):
            return self.answer(404, 1203, "Requested resource not found")
        if method == "POST" and len(parts) == 3:
            return self.create(parts[2], body or {})
        if method == "GET" and len(parts) == 4:
            return self.poll(parts[2], parts[3])
        return self.answer(404, 1203, "Requested resource not found")

    def create(self, endpoint: str, body: dict):
        if not body.get("prompt") and endpoint == "text2video":
            return self.answer(400, 1201, "prompt is required")
        if endpoint == "image2video" and not body.get("image"):
            return self.answer(400, 1201, "image is required")
        if body.get("duration") not in ("5", "10") or body.get("mode") not in ("std", "pro"):
            return self.answer(400, 1201, "invalid duration or mode")
        behaviour = self.next_behaviour()
        if behaviour == "safety":
            return self.answer(400, 1301, "Failure to pass the risk control system")
        if behaviour == "rate_limit":
            return self.answer(429, 1302, "The API request is too fast, please slow down the request frequency")
        if behaviour == "concurrency_limit":
            return self.answer(429, 1303, "Parallel task over resource pack limit")
        if behaviour == "billing":
            return self.answer(429, 1102, "Resource pack exhausted")
        if behaviour == "server_error":
            return self.answer(500, 5000, "Server internal error")
        if behaviour == "timeout":
            return self.answer(200, 0, "SUCCESS", {"task_id": "late", "task_status": "submitted"}, delay=self.slow_seconds)
        if behaviour == "malformed":
            return 200, b'{"code": 0, "data": ', JSON, 0
        task_id = str(next(self.ids))
        now = int(time.time() * 1000)
        self.tasks[task_id] = {"endpoint": endpoint, "behaviour": behaviour, "polls": 0, "created_at": now}
        return self.answer(200, 0, "SUCCESS", {"task_id": task_id, "task_status": "submitted",
                                               "created_at": now, "updated_at": now})

    def poll(self, endpoint: str, task_id: str):
        task = self.tasks.get(task_id)
        if task is None or task["endpoint"] != endpoint:
            return self.answer(404, 1203, "Task not found")
        task["polls"] += 1
        if (task["behaviour"] == "poll_error" and task["polls"] == 1) or task["behaviour"] == "poll_down":
            return self.answer(500, 5000, "Server internal error")
        data = {"task_id": task_id, "created_at": task["created_at"], "updated_at": int(time.time() * 1000)}
        if task["polls"] < self.POLLS_BEFORE_DONE:
            data["task_status"] = "processing"
        elif task["behaviour"] == "task_failed":
            data.update(task_status="failed", task_status_msg="Failure to pass the risk control system")
        else:
            data.update(task_status="succeed", task_status_msg="", task_result={
                "videos": [{"id": f"v{task_id}", "url": f"{self.url}/files/{task_id}.mp4", "duration": "5"}]
            })
        return self.answer(200, 0, "SUCCESS", data)

    def video(self, url):
        """The task's video file, as its behaviour has it."""
        task_id = url.path.rsplit("/", 1)[-1].removesuffix(".mp4")
        task = self.tasks.get(task_id)
        if task is None or task["behaviour"] == "expired_url":
            return 403, b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>", "application/xml", 0
        behaviour = task["behaviour"]
        task["downloads"] = task.get("downloads", 0) + 1
        if behaviour == "flaky_download" and task["downloads"] <= 2:
            return 500, b"<Error><Code>InternalError</Code></Error>", "application/xml", 0
        redirects = {
            "redirect_home": f"{task_id}.mp4?moved=1",
            "redirect_private": f"http://10.0.0.7/files/{task_id}.mp4",
            "redirect_link_local": "http://169.254.169.254/latest/meta-data/",
        }
        if behaviour in redirects and not url.query:
            return 302, StreamedBody((b"",), headers=(("Location", redirects[behaviour]),)), "text/plain", 0
        if behaviour == "slow_download":
            pieces = tuple(STUB_VIDEO[i:i + 8] for i in range(0, len(STUB_VIDEO), 8))
            return 200, StreamedBody(pieces, pause=self.slow_seconds / len(pieces)), "video/mp4", 0
        if behaviour == "unsized_download":
            return 200, StreamedBody((STUB_VIDEO[:40], STUB_VIDEO[40:]), sized=False), "video/mp4", 0
        return 200, STUB_VIDEO, "video/mp4", 0
