"""Google Gemini image generation ("Nano Banana") through the REST ``generateContent`` API.

``POST {GEMINI_API_URL}/v1beta/models/{model}:generateContent`` with the key in
``x-goog-api-key``; the prompt is a text part, an input picture an ``inline_data`` part, and
``generationConfig.responseModalities`` asks for ``["TEXT", "IMAGE"]``. The answer's pictures
are ``inlineData`` parts anywhere among the candidate's parts (the model may put text first).
"""
from __future__ import annotations

import base64
import binascii

import requests
from django.conf import settings

from .. import catalog
from .base import (
    BadInput,
    BaseAIProvider,
    GeneratedMedia,
    GenerationRequest,
    GenerationResult,
    MalformedResponse,
    NoMediaReturned,
    ProgressReporter,
    ProviderAuthError,
    ProviderBillingError,
    ProviderError,
    ProviderNotConfigured,
    ProviderUnavailable,
    RateLimited,
    SafetyBlocked,
)
from .http import json_body, retry_after, send, shared_session

# finishReason values meaning the content filter stopped the picture.
SAFETY_REASONS = {
    "SAFETY", "IMAGE_SAFETY", "PROHIBITED_CONTENT", "IMAGE_PROHIBITED_CONTENT", "BLOCKLIST", "SPII",
    "RECITATION", "IMAGE_RECITATION",
}


class GeminiImageProvider(BaseAIProvider):
    name = "gemini"

    def __init__(self, *, api_key: str | None = None, api_url: str | None = None, model: str | None = None,
                 timeout: float | None = None, session: requests.Session | None = None):
        self.api_key = api_key if api_key is not None else settings.NANO_BANANA_API_KEY
        self.api_url = (api_url or settings.GEMINI_API_URL).rstrip("/")
        self.model = model or settings.GEMINI_MODEL
        self.timeout = timeout if timeout is not None else settings.AI_HTTP_TIMEOUT
        self.session = session or shared_session()

    def build_body(self, request: GenerationRequest) -> dict:
        parts: list[dict] = [{"text": request.prompt}]
        if request.input_image:
            parts.append({
                "inline_data": {
                    "mime_type": request.input_mime or "image/png",
                    "data": base64.b64encode(request.input_image).decode("ascii"),
                }
            })
        config: dict = {"responseModalities": ["TEXT", "IMAGE"]}
        if request.aspect_ratio in catalog.IMAGE_ASPECT_RATIOS:
            config["imageConfig"] = {"aspectRatio": request.aspect_ratio}
        return {"contents": [{"role": "user", "parts": parts}], "generationConfig": config}

    def generate(self, request: GenerationRequest, reporter: ProgressReporter) -> GenerationResult:
        if not self.api_key:
            raise ProviderNotConfigured("NANO_BANANA_API_KEY is not set")
        reporter.report(10)
        response = send(
            self.session, "POST", f"{self.api_url}/v1beta/models/{self.model}:generateContent",
            timeout=self.timeout, json=self.build_body(request),
            headers={"x-goog-api-key": self.api_key, "Content-Type": "application/json"},
        )
        if response.status_code != 200:
            raise self.http_error(response)
        result = self.parse(json_body(response))
        reporter.report(90)
        return result

    @staticmethod
    def http_error(response: requests.Response) -> ProviderError:
        status = response.status_code
        try:
            error = response.json().get("error", {})
        except ValueError:
            error = {}
        detail = f"HTTP {status} {error.get('status', '')}: {error.get('message', response.text[:200])}"
        if status == 429:
            return RateLimited(detail, retry_after=retry_after(response))
        if status >= 500 or status == 408:
            return ProviderUnavailable(detail)
        if status in (401, 403):
            return ProviderAuthError(detail)
        if status == 402 or error.get("status") == "FAILED_PRECONDITION":
            return ProviderBillingError(detail)
        return BadInput(detail)

    @staticmethod
    def parse(body: dict) -> GenerationResult:
        feedback = body.get("promptFeedback") or {}
        if feedback.get("blockReason"):
            raise SafetyBlocked(f"prompt blocked: {feedback['blockReason']}")
        candidates = body.get("candidates")
        if not isinstance(candidates, list) or not candidates:
            raise MalformedResponse("no candidates in the answer")
        media: list[GeneratedMedia] = []
        texts: list[str] = []
        reasons: list[str] = []
        for candidate in candidates:
            if not isinstance(candidate, dict):
                raise MalformedResponse("a candidate is not an object")
            reasons.append(str(candidate.get("finishReason") or ""))
            for part in (candidate.get("content") or {}).get("parts") or []:
                inline = part.get("inlineData") or part.get("inline_data")
                if inline:
                    try:
                        content = base64.b64decode(inline["data"], validate=True)
                    except (KeyError, TypeError, binascii.Error) as exc:
                        raise MalformedResponse("inlineData without valid base64 data") from exc
                    mime = inline.get("mimeType") or inline.get("mime_type") or "image/png"
                    media.append(GeneratedMedia(content=content, mime_type=mime))
                elif part.get("text"):
                    texts.append(part["text"])
        if media:
            return GenerationResult(media=media, text="\n".join(texts))
        for reason in reasons:
            if reason in SAFETY_REASONS:
                raise SafetyBlocked(f"finishReason {reason}")
        raise NoMediaReturned(f"finishReason {', '.join(reasons) or 'missing'}: {' '.join(texts)[:200]}")
