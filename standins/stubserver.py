"""The threaded HTTP server under the Gemini and Kling stubs: scripts, a request log, limits, stats.

Each stub runs in a thread on 127.0.0.1 (port 0 picks a free port). What the next requests get
is scripted with ``stub.script("rate_limit", "success")``; when the script is empty, requests
succeed. Every stub answers ``GET /_stub/stats`` (its counters, for tests and benchmarks run in
another process) and ``POST /_stub/reset`` (forget tasks, counters, script and log); those two
are neither logged nor counted nor rate limited.
"""
from __future__ import annotations

import json
import threading
import time
from collections import Counter, deque
from collections.abc import Hashable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standins.limits import SlidingWindow, admit

JSON = "application/json"

# How often a serving loop looks for a stop: ``shutdown()`` waits up to this long (socketserver's
# default, 0.5 s, cost a quarter of a second per stub stopped: per test, across the suite).
STOP_POLL_SECONDS = 0.02


@dataclass(frozen=True)
class StreamedBody:
    """A body sent in ``pieces`` with ``pause`` seconds between them; chunked when not ``sized``."""

    pieces: tuple[bytes, ...]
    pause: float = 0.0
    sized: bool = True
    headers: tuple[tuple[str, str], ...] = ()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # 500 clients connecting at once must not overflow the listen backlog (the default is 5).
    request_queue_size = 1024


class StubServer:
    """A threaded HTTP server with a script of behaviours, a log of the requests it got, a
    request rate limiter (``requests_per_minute`` per key; None: none) and counters."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, slow_seconds: float = 2.0,
                 requests_per_minute: int | None = None, record_requests: bool = True):
        self.script_queue: deque[str] = deque()
        self.requests: list[dict] = []
        self.record_requests = record_requests
        self.slow_seconds = slow_seconds
        self.lock = threading.RLock()
        self.rate = SlidingWindow(limit=requests_per_minute, seconds=60.0) if requests_per_minute else None
        self.counts: Counter[str] = Counter()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes: with Nagle on, a kept-alive connection
            # waits out the client's delayed ACK (40 ms) before each body, as no real API does.
            disable_nagle_algorithm = True

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                stub._dispatch(self, "GET")

            def do_POST(self):
                stub._dispatch(self, "POST")

        self.server = _Server((host, port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": STOP_POLL_SECONDS},
                                       name=type(self).__name__, daemon=True)

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

    def serve_forever(self) -> None:
        """Serve in this thread (a management command) until interrupted."""
        try:
            self.server.serve_forever()
        finally:
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

    def over_rate(self, key: Hashable) -> bool:
        """Count one request for ``key``; True (and counted as ``refused_rate``) when over the limit."""
        if self.rate is None:
            return False
        with self.lock:
            if admit([(self.rate, key)], now=time.monotonic()) > 0:
                self.counts["refused_rate"] += 1
                return True
            return False

    def stats(self) -> dict:
        """Counters for ``GET /_stub/stats``; subclasses add theirs."""
        with self.lock:
            return {"requests": self.counts["requests"], "refused_rate": self.counts["refused_rate"]}

    def reset(self) -> None:
        with self.lock:
            self.script_queue.clear()
            self.requests.clear()
            self.counts.clear()
            if self.rate is not None:
                self.rate = SlidingWindow(limit=self.rate.limit, seconds=self.rate.seconds)

    # --- plumbing ---

    def _dispatch(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if handler.path.startswith("/_stub/"):
            status, payload, content_type, delay = self._control(method, handler.path)
        else:
            with self.lock:
                self.counts["requests"] += 1
                if self.record_requests:
                    self.requests.append({"method": method, "path": handler.path, "headers": dict(handler.headers),
                                          "body": body})
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

    def _control(self, method: str, path: str):
        if method == "GET" and path == "/_stub/stats":
            return 200, self.stats(), JSON, 0
        if method == "POST" and path == "/_stub/reset":
            self.reset()
            return 200, {"reset": True}, JSON, 0
        return 404, {"error": f"{method} {path}: the stub knows /_stub/stats and /_stub/reset"}, JSON, 0

    def handle(self, method, path, headers, body):
        """Subclasses answer with (status, JSON-able or bytes, content type, delay seconds)."""
        return 501, {"error": "this stub speaks no protocol"}, JSON, 0
