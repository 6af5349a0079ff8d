"""A minimal S3-compatible server (path-style PUT/GET/HEAD/DELETE of objects) for storage tests.

Like S3 it answers a bucket asked too often with 503 SlowDown (its XML error): S3's own figures
per prefix, 3,500 writes (PUT, DELETE) and 5,500 reads (GET, HEAD) a second, here per bucket;
``S3Stub(writes=(calls, seconds), reads=(calls, seconds))`` sets others.
"""
from __future__ import annotations

import hashlib
import threading
import time
import uuid
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standins.limits import SlidingWindow, admit
from standins.stubserver import STOP_POLL_SECONDS

# (calls, in any so many seconds) per bucket: S3's published request rates per prefix.
WRITE_LIMIT = (3500, 1.0)
READ_LIMIT = (5500, 1.0)


def decode_aws_chunked(raw: bytes) -> bytes:
    """Undo ``Content-Encoding: aws-chunked`` (size;ext CRLF data CRLF ... 0 CRLF trailers)."""
    out, pos = bytearray(), 0
    while True:
        line_end = raw.index(b"\r\n", pos)
        size = int(raw[pos:line_end].split(b";")[0], 16)
        pos = line_end + 2
        if size == 0:
            return bytes(out)
        out += raw[pos:pos + size]
        pos += size + 2


def slow_down_body() -> bytes:
    """S3's answer to a request rate it will not take (with HTTP 503)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
        f"<Message>Please reduce your request rate.</Message><RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId></Error>"
    ).encode()


class S3Stub:
    def __init__(self, *, writes: tuple[int, float] = WRITE_LIMIT, reads: tuple[int, float] = READ_LIMIT, clock=time.monotonic):
        self.objects: dict[str, bytes] = {}
        self.limits = {"write": SlidingWindow(limit=writes[0], seconds=writes[1]),
                       "read": SlidingWindow(limit=reads[0], seconds=reads[1])}
        self._lock = threading.Lock()
        self._clock = clock
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    raw = bytearray()
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b""):
                                pass
                            break
                        raw += self.rfile.read(size)
                        self.rfile.readline()
                    raw = bytes(raw)
                else:
                    raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if "aws-chunked" in self.headers.get("Content-Encoding", "") or self.headers.get(
                        "x-amz-content-sha256", "").startswith("STREAMING-"):
                    raw = decode_aws_chunked(raw)
                return raw

            def _send(self, status: int, body: bytes = b"", headers: dict | None = None, head: bool = False):
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def _slowed_down(self, kind: str, head: bool = False) -> bool:
                """Count this request against its bucket's window; answer 503 SlowDown when it is full."""
                bucket = self.path.split("?")[0].lstrip("/").split("/")[0]
                with stub._lock:
                    wait = admit([(stub.limits[kind], bucket)], now=stub._clock())
                if wait <= 0:
                    return False
                self._send(503, slow_down_body(), {"Content-Type": "application/xml"}, head)
                return True

            def do_PUT(self):
                data = self._body()
                if self._slowed_down("write"):
                    return
                stub.objects[self.path.split("?")[0]] = data
                self._send(200, headers={"ETag": f'"{hashlib.md5(data).hexdigest()}"'})

            def _object(self, head: bool):
                data = stub.objects.get(self.path.split("?")[0])
                if data is None:
                    body = b"<Error><Code>NoSuchKey</Code></Error>"
                    return self._send(404, body, {"Content-Type": "application/xml"}, head)
                self._send(200, data, {"ETag": f'"{hashlib.md5(data).hexdigest()}"', "Content-Type": "binary/octet-stream",
                                       "Last-Modified": formatdate(usegmt=True)}, head)

            def do_GET(self):
                if not self._slowed_down("read"):
                    self._object(head=False)

            def do_HEAD(self):
                if not self._slowed_down("read", head=True):
                    self._object(head=True)

            def do_DELETE(self):
                if self._slowed_down("write"):
                    return
                stub.objects.pop(self.path.split("?")[0], None)
                self._send(204)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": STOP_POLL_SECONDS}, daemon=True)

    @property
    def url(self) -> str:
        return "http://%s:%s" % self.server.server_address[:2]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
