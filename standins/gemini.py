"""Gemini's ``POST /v1beta/models/{model}:generateContent``, like Google's Generative Language API.

It checks ``x-goog-api-key``, the path and the body against the protocol, as Google does:

- a field the API does not define (at the top, in ``generationConfig``, in its ``imageConfig``,
  in a part or its ``inline_data``) is HTTP 400 ``INVALID_ARGUMENT`` ``Invalid JSON payload
  received. Unknown name "x" at 'generation_config': Cannot find field.``;
- a model it does not serve is 404 ``NOT_FOUND``; for each one it serves (``MODELS``, Google's
  model pages): the aspect ratios it takes, whether it takes ``imageSize`` (the Gemini 3 models
  1K/2K/4K; 2.5 Flash none) and how many input pictures; anything else is 400
  ``INVALID_ARGUMENT``, as is a picture of a MIME type Gemini does not read or bad base64.

``latency`` seconds pass inside every admitted call (the picture takes time); at most
``max_concurrent`` calls run at once (None: no limit) and one over it is answered at once with
HTTP 429 ``RESOURCE_EXHAUSTED``, as is a call over ``requests_per_minute`` for the key. The
picture answered has the pixel size Gemini gives the requested ratio and size.
Scripted behaviours: success, prompt_blocked, image_safety, no_image, rate_limit, server_error,
bad_request, timeout, malformed, and ``finish:<finishReason>`` / ``block:<blockReason>`` for any
value Google documents (a candidate without a picture that ends so; a prompt refused so).
Stats: ``calls`` (admitted), ``concurrent``, ``max_concurrent``, ``refused_concurrency``,
``refused_rate``, ``requests``.
"""
from __future__ import annotations

import base64
import binascii
import io
import time
from functools import lru_cache

from PIL import Image

from standins.stubserver import JSON, StubServer

DEFAULT_REQUESTS_PER_MINUTE = 60_000  # generous: a client's own limiter is what tests exercise

RATIOS = frozenset({"1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"})
# model -> (aspect ratios, image sizes, input pictures at most)
MODELS = {
    "gemini-2.5-flash-image": (RATIOS, frozenset(), 3),
    "gemini-3-pro-image-preview": (RATIOS, frozenset({"1K", "2K", "4K"}), 14),
    "gemini-3.1-flash-image-preview": (RATIOS | {"1:4", "4:1", "1:8", "8:1"}, frozenset({"1K", "2K", "4K"}), 14),
}
# The fields each object of the request may carry (camelCase and snake_case alike, as the API reads both).
FIELDS = {
    "": {"contents", "generationConfig", "generation_config", "safetySettings", "safety_settings",
         "systemInstruction", "system_instruction", "tools", "toolConfig", "tool_config", "cachedContent",
         "cached_content"},
    "contents": {"role", "parts"},
    "parts": {"text", "inline_data", "inlineData", "file_data", "fileData", "thought", "thoughtSignature"},
    "inline_data": {"mime_type", "mimeType", "data"},
    "generation_config": {"responseModalities", "response_modalities", "imageConfig", "image_config",
                          "temperature", "topP", "top_p", "topK", "top_k", "candidateCount", "candidate_count",
                          "maxOutputTokens", "max_output_tokens", "stopSequences", "stop_sequences", "seed",
                          "responseMimeType", "response_mime_type", "thinkingConfig", "thinking_config"},
    "generation_config.image_config": {"aspectRatio", "aspect_ratio", "imageSize", "image_size"},
}
INPUT_MIME_TYPES = {"image/png", "image/jpeg", "image/webp", "image/heic", "image/heif"}


class Refused(Exception):
    """The answer to a request the API refuses: (HTTP status, Google status, message)."""


def unknown_field(obj: dict, where: str) -> None:
    extra = sorted(set(obj) - FIELDS[where])
    if extra:
        at = f" at '{where}'" if where else ""
        raise Refused(400, "INVALID_ARGUMENT", f'Invalid JSON payload received. Unknown name "{extra[0]}"{at}: '
                                               "Cannot find field.")


def either(obj: dict, camel: str, snake: str):
    return obj.get(camel, obj.get(snake))


def check_body(model: str, spec: tuple, body) -> tuple[str, str]:
    """The (aspect ratio, image size) asked for; raises ``Refused`` as Google would."""
    if not isinstance(body, dict):
        raise Refused(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
    ratios, sizes, most_pictures = spec
    unknown_field(body, "")
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents or not all(isinstance(c, dict) for c in contents):
        raise Refused(400, "INVALID_ARGUMENT", "* GenerateContentRequest.contents: contents is not specified")
    pictures = 0
    for content in contents:
        unknown_field(content, "contents")
        for part in content.get("parts") or []:
            unknown_field(part, "parts")
            inline = either(part, "inlineData", "inline_data")
            if inline is None:
                continue
            unknown_field(inline, "inline_data")
            pictures += 1
            mime = either(inline, "mimeType", "mime_type")
            if mime not in INPUT_MIME_TYPES:
                raise Refused(400, "INVALID_ARGUMENT", f"Unsupported MIME type: {mime}")
            try:
                base64.b64decode(inline.get("data") or "", validate=True)
            except (binascii.Error, TypeError):
                raise Refused(400, "INVALID_ARGUMENT", "Invalid value at 'contents[0].parts.inline_data.data' "
                                                       "(TYPE_BYTES), Base64 decoding failed") from None
    if pictures > most_pictures:
        raise Refused(400, "INVALID_ARGUMENT", f"Too many images: {pictures}; {model} accepts at most {most_pictures}.")
    config = either(body, "generationConfig", "generation_config") or {}
    unknown_field(config, "generation_config")
    parts = contents[-1].get("parts") or []
    modalities = either(config, "responseModalities", "response_modalities") or []
    if "IMAGE" not in modalities or not any("text" in part for part in parts):
        raise Refused(400, "INVALID_ARGUMENT", "Request must ask for IMAGE and carry a prompt.")
    image_config = either(config, "imageConfig", "image_config") or {}
    unknown_field(image_config, "generation_config.image_config")
    ratio, size = either(image_config, "aspectRatio", "aspect_ratio"), either(image_config, "imageSize", "image_size")
    if ratio is not None and ratio not in ratios:
        raise Refused(400, "INVALID_ARGUMENT", f"Unsupported aspect ratio: {ratio}. Supported values are "
                                               f"{', '.join(sorted(ratios))}.")
    if size is not None and not sizes:
        raise Refused(400, "INVALID_ARGUMENT", f"imageSize is not supported by {model}.")
    if size is not None and size not in sizes:
        raise Refused(400, "INVALID_ARGUMENT", f"Unsupported image size: {size}. Supported values are "
                                               f"{', '.join(sorted(sizes))}.")
    return ratio or "1:1", size or "1K"


@lru_cache(maxsize=64)
def picture_of(ratio: str, size: str) -> str:
    """A plain picture of the size Gemini makes at this ratio and size, in base64."""
    from jobs.providers.fake import picture_size  # Google's size table, kept once

    image = Image.new("P", picture_size(ratio, size), 0)
    image.putpalette([30, 120, 200])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return base64.b64encode(buffer.getvalue()).decode()


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
        self.model = model  # the one tests address; served with 2.5 Flash's rules when MODELS lacks it
        self.models = {**MODELS, model: MODELS.get(model, MODELS["gemini-2.5-flash-image"])}
        self.latency = latency
        self.max_concurrent = max_concurrent
        self.concurrent = 0
        self.most_concurrent = 0

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
        prefix, _sep, model = path.partition("/v1beta/models/")
        model, _sep, verb = model.partition(":")
        if method != "POST" or prefix or verb != "generateContent" or model not in self.models:
            return self.error(404, "NOT_FOUND", f"models/{model} is not found for API version v1beta, or is not "
                                                "supported for generateContent.")
        if headers.get("x-goog-api-key") != self.api_key:
            return self.error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.")
        try:
            shape = check_body(model, self.models[model], body)
        except Refused as refused:
            return self.error(*refused.args)
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
            return self.answer(self.next_behaviour(), shape)
        finally:
            with self.lock:
                self.concurrent -= 1

    def answer(self, behaviour: str, shape: tuple[str, str] = ("1:1", "1K")):
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
        behaviour = {"prompt_blocked": "block:PROHIBITED_CONTENT", "image_safety": "finish:IMAGE_SAFETY"}.get(behaviour, behaviour)
        kind, _sep, reason = behaviour.partition(":")
        if kind == "block":
            return 200, {"promptFeedback": {"blockReason": reason}}, JSON, 0
        if kind == "finish":
            return 200, {"candidates": [{"content": {"parts": [], "role": "model"}, "finishReason": reason}]}, JSON, 0
        if behaviour == "no_image":
            return 200, {"candidates": [{"content": {"parts": [{"text": "I cannot draw that."}], "role": "model"},
                                         "finishReason": "STOP"}]}, JSON, 0
        return 200, {
            "candidates": [{
                "content": {"role": "model", "parts": [
                    {"text": "Here is your picture."},
                    {"inlineData": {"mimeType": "image/png", "data": picture_of(*shape)}},
                ]},
                "finishReason": "STOP",
                "index": 0,
            }],
            "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 1290},
        }, JSON, 0
