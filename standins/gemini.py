"""Gemini's ``POST /v1beta/models/{model}:generateContent``, like Google's Generative Language API.

It checks ``x-goog-api-key``, the path and the body shape. ``latency`` seconds pass inside every
admitted call (the picture takes time); at most ``max_concurrent`` calls run at once (None: no
limit) and one over it is answered at once with HTTP 429 ``RESOURCE_EXHAUSTED``, as is a call
over ``requests_per_minute`` for the key. Scripted behaviours: success, prompt_blocked,
image_safety, no_image, rate_limit, server_error, bad_request, timeout, malformed.
Stats: ``calls`` (admitted), ``concurrent``, ``max_concurrent``, ``refused_concurrency``,
``refused_rate``, ``requests``.
"""
from __future__ import annotations

import base64
import io
import time

from PIL import Image

from standins.stubserver import JSON, StubServer

DEFAULT_REQUESTS_PER_MINUTE = 60_000  # generous: a client's own limiter is what tests exercise


def stub_png(colour=(30, 120, 200)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), colour).save(buffer, format="PNG")
    return buffer.getvalue()


class GeminiStub(StubServer):
    def __init__(self, *, api_key: str = "test-gemini-key", model: str = "gemini-2.5-flash-image",
                 latency: float = 0.0, max_concurrent: int | None = None,
                 requests_per_minute: int | None = DEFAULT_REQUESTS_PER_MINUTE, **kwargs):
        super().__init__(requests_per_minute=requests_per_minute, **kwargs)
        self.api_key = api_key
        self.model = model
        self.latency = latency
        self.max_concurrent = max_concurrent
        self.concurrent = 0
        self.most_concurrent = 0
        self.picture = base64.b64encode(stub_png()).decode()

    @staticmethod
    def error(status: int, code: str, message: str):
        return status, {"error": {"code": status, "message": message, "status": code}}, JSON, 0

    def stats(self) -> dict:
        with self.lock:
            return {**super().stats(), "calls": self.counts["calls"], "concurrent": self.concurrent,
                    "max_concurrent": self.most_concurrent, "refused_concurrency": self.counts["refused_concurrency"],
                    "latency": self.latency, "concurrency_limit": self.max_concurrent}

    def reset(self) -> None:
        with self.lock:
            super().reset()
            self.most_concurrent = self.concurrent

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
        if self.over_rate(self.api_key):
            return self.error(429, "RESOURCE_EXHAUSTED", "Quota exceeded for requests per minute.")
        with self.lock:
            if self.max_concurrent is not None and self.concurrent >= self.max_concurrent:
                self.counts["refused_concurrency"] += 1
                return self.error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (too many concurrent requests).")
            self.concurrent += 1
            self.most_concurrent = max(self.most_concurrent, self.concurrent)
            self.counts["calls"] += 1
        try:
            if self.latency:
                time.sleep(self.latency)
            return self.answer(self.next_behaviour())
        finally:
            with self.lock:
                self.concurrent -= 1

    def answer(self, behaviour: str):
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
        return 200, {
            "candidates": [{
                "content": {"role": "model", "parts": [
                    {"text": "Here is your picture."},
                    {"inlineData": {"mimeType": "image/png", "data": self.picture}},
                ]},
                "finishReason": "STOP",
                "index": 0,
            }],
            "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 1290},
        }, JSON, 0
