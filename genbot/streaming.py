"""Reading a streamed ``requests`` body under a byte cap and a deadline for the whole body.

Used where a body comes from outside and may be huge or dripped (a provider's result video, a
file the customer sent through Telegram). Per-read timeouts alone do not bound a download: a
server sending a byte now and then never trips them, so every socket wait is cut to the time
left before the deadline, and the deadline is checked between reads.
"""
from __future__ import annotations

import socket
import time

import requests
import urllib3.exceptions

CHUNK = 64 * 1024


class StreamError(Exception):
    """Base of the reasons a body could not be read."""


class BodyTooLarge(StreamError):
    def __init__(self, limit: int):
        self.limit = limit
        super().__init__(f"body larger than {limit} bytes")


class BodyTimedOut(StreamError):
    """The deadline passed, or one read waited longer than the read timeout."""


class BodyBroken(StreamError):
    """The connection broke off mid-body."""


def time_left(ends: float) -> float:
    """Seconds until the monotonic moment ``ends``; ``BodyTimedOut`` once it passed."""
    left = ends - time.monotonic()
    if left <= 0:
        raise BodyTimedOut("the deadline passed")
    return left


def read_body(response: requests.Response, *, max_bytes: int, ends: float, timeout: float) -> bytes:
    """The body of a ``stream=True`` response: at most ``max_bytes``, done by ``ends`` (monotonic).

    A Content-Length over the cap is refused before reading; the body is counted as it arrives
    (decoded, so a compressed body cannot expand past the cap). ``timeout`` bounds each read.
    """
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLarge(max_bytes)
    sock = getattr(getattr(response.raw, "connection", None), "sock", None)
    chunks: list[bytes] = []
    size = 0
    while True:
        left = time_left(ends)
        if sock is not None:
            sock.settimeout(min(timeout, left))
        try:
            chunk = response.raw.read1(CHUNK, decode_content=True)
        except (urllib3.exceptions.ReadTimeoutError, socket.timeout) as exc:
            raise BodyTimedOut(f"a read stalled: {exc}") from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise BodyBroken(str(exc)) from exc
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLarge(max_bytes)
        chunks.append(chunk)
