"""A request or job id on every log line.

``bind(request_id=...)`` / ``bind(job_id=...)`` set context for the current thread (or
coroutine); ``ContextFilter`` puts it on each record as ``%(context)s``. The web middleware binds
a request id (the proxy's ``X-Request-ID`` when it sends one); the worker task binds the job id.
"""
from __future__ import annotations

import contextvars
import logging
import re
import uuid
from contextlib import contextmanager

_context: contextvars.ContextVar[dict] = contextvars.ContextVar("genbot_log_context", default={})
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@contextmanager
def bind(**ids):
    token = _context.set({**_context.get(), **{k: v for k, v in ids.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def current() -> dict:
    return dict(_context.get())


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        ctx = _context.get()
        record.context = " ".join(f"{k}={v}" for k, v in ctx.items()) or "-"
        return True


class RequestIdMiddleware:
    """Binds a request id for the request's log lines and returns it as ``X-Request-ID``."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex[:16]
        with bind(request_id=request_id):
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response
