"""Google Gemini image generation ("Nano Banana") through the REST ``generateContent`` API.

The request: ``POST {GEMINI_API_URL}/v1beta/models/{model}:generateContent`` with the key in
``x-goog-api-key`` and the body::

    {"contents": [{"role": "user", "parts": [
        {"text": "<prompt>"},
        {"inline_data": {"mime_type": "image/png", "data": "<base64>"}},   # one per input picture
        ...]}],
     "generationConfig": {"responseModalities": ["TEXT", "IMAGE"],
                          "imageConfig": {"aspectRatio": "16:9", "imageSize": "2K"}}}

``imageConfig.aspectRatio`` is one of the ratios the model lists (the ten of every image model:
1:1 2:3 3:2 3:4 4:3 4:5 5:4 9:16 16:9 21:9; the 3.1 Flash model adds 1:4 4:1 1:8 8:1);
``imageSize`` ("1K", "2K", "4K", upper-case K) only for the Gemini 3 models — 2.5 Flash makes 1K
only and refuses the field. A model takes up to its number of input pictures (2.5 Flash 3, the
Gemini 3 models 14). ``MODELS`` holds what each model id takes, so nothing a model refuses is
sent; an id it does not know gets the basic fields only (prompt, the first picture, a ratio of
the ten). Refusals of the body are HTTP 400 ``INVALID_ARGUMENT``.

The answer: pictures are ``inlineData`` parts anywhere among the candidate's parts (the model
may put text first). With none, ``promptFeedback.blockReason`` (the prompt was refused: SAFETY,
BLOCKLIST, PROHIBITED_CONTENT, IMAGE_SAFETY, OTHER, BLOCK_REASON_UNSPECIFIED) or the candidate's
``finishReason`` says why, and ``FINISH_REASONS`` turns each documented value into a final error
with its customer message: the safety family (SAFETY, IMAGE_SAFETY, PROHIBITED_CONTENT,
IMAGE_PROHIBITED_CONTENT, BLOCKLIST, SPII, MODEL_ARMOR), recitation (RECITATION,
IMAGE_RECITATION), LANGUAGE, and no picture for any other reason (NO_IMAGE, IMAGE_OTHER, STOP
without a picture, MAX_TOKENS, OTHER, MALFORMED_FUNCTION_CALL, UNEXPECTED_TOOL_CALL,
TOO_MANY_TOOL_CALLS, MISSING_THOUGHT_SIGNATURE, MALFORMED_RESPONSE, FINISH_REASON_UNSPECIFIED).
"""
from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

import requests
from django.conf import settings

from .base import (
    BadInput,
    BaseAIProvider,
    GeneratedMedia,
    GenerationRequest,
    GenerationResult,
    ImageSafetyBlocked,
    MalformedResponse,
    NoMediaReturned,
    PersonalDataBlocked,
    ProgressReporter,
    ProhibitedContent,
    PromptBlocked,
    ProviderAuthError,
    ProviderBillingError,
    ProviderError,
    ProviderNotConfigured,
    ProviderUnavailable,
    RateLimited,
    RecitationBlocked,
    SafetyBlocked,
    UnsupportedLanguage,
)
from .http import json_body, retry_after, send, shared_session

TEN_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")


@dataclass(frozen=True)
class ModelSpec:
    """What one Gemini image model takes in a request."""

    aspect_ratios: tuple[str, ...] = TEN_RATIOS
    image_sizes: tuple[str, ...] = ()  # empty: imageSize is not sent
    max_input_images: int = 1


MODELS: dict[str, ModelSpec] = {
    "gemini-2.5-flash-image": ModelSpec(max_input_images=3),
    "gemini-3-pro-image-preview": ModelSpec(image_sizes=("1K", "2K", "4K"), max_input_images=14),
    "gemini-3.1-flash-image-preview": ModelSpec(aspect_ratios=(*TEN_RATIOS, "1:4", "4:1", "1:8", "8:1"),
                                                image_sizes=("1K", "2K", "4K"), max_input_images=14),
}
BASIC = ModelSpec()

# finishReason (and blockReason) -> the final error it ends the job with; anything else: no picture.
FINISH_REASONS: dict[str, type[ProviderError]] = {
    "SAFETY": SafetyBlocked,
    "MODEL_ARMOR": SafetyBlocked,
    "IMAGE_SAFETY": ImageSafetyBlocked,
    "PROHIBITED_CONTENT": ProhibitedContent,
    "IMAGE_PROHIBITED_CONTENT": ProhibitedContent,
    "BLOCKLIST": ProhibitedContent,
    "SPII": PersonalDataBlocked,
    "RECITATION": RecitationBlocked,
    "IMAGE_RECITATION": RecitationBlocked,
    "LANGUAGE": UnsupportedLanguage,
}
# promptFeedback.blockReason -> the error; SAFETY, IMAGE_SAFETY (an input picture), OTHER and
# BLOCK_REASON_UNSPECIFIED: the prompt was blocked.
BLOCK_REASONS: dict[str, type[ProviderError]] = {
    "PROHIBITED_CONTENT": ProhibitedContent,
    "BLOCKLIST": ProhibitedContent,
}
# The same order of gravity decides between several candidates' reasons.
GRAVITY = tuple(FINISH_REASONS)


def model_spec(model: str) -> ModelSpec:
    return MODELS.get(model, BASIC)


def input_images(request: GenerationRequest) -> tuple[tuple[bytes, str], ...]:
    """Every input picture with its MIME type; ``input_image`` alone when the list is empty."""
    if request.input_images:
        return request.input_images
    return ((request.input_image, request.input_mime),) if request.input_image else ()


class GeminiImageProvider(BaseAIProvider):
    name = "gemini"

    def __init__(self, *, api_key: str | None = None, api_url: str | None = None, model: str | None = None,
                 timeout: float | None = None, session: requests.Session | None = None):
        self.api_key = api_key if api_key is not None else settings.NANO_BANANA_API_KEY
        self.api_url = (api_url or settings.GEMINI_API_URL).rstrip("/")
        self.model = model or settings.GEMINI_MODEL
        self.timeout = timeout if timeout is not None else settings.AI_HTTP_TIMEOUT
        self.session = session or shared_session()

    def model_for(self, request: GenerationRequest) -> str:
        return request.model or self.model

    def build_body(self, request: GenerationRequest) -> dict:
        spec = model_spec(self.model_for(request))
        parts: list[dict] = [{"text": request.prompt}]
        for content, mime in input_images(request)[:spec.max_input_images]:
            parts.append({"inline_data": {"mime_type": mime or "image/png",
                                          "data": base64.b64encode(content).decode("ascii")}})
        image_config = {}
        if request.aspect_ratio in spec.aspect_ratios:
            image_config["aspectRatio"] = request.aspect_ratio
        if request.image_size in spec.image_sizes:
            image_config["imageSize"] = request.image_size
        config: dict = {"responseModalities": ["TEXT", "IMAGE"]}
        if image_config:
            config["imageConfig"] = image_config
        return {"contents": [{"role": "user", "parts": parts}], "generationConfig": config}

    def generate(self, request: GenerationRequest, reporter: ProgressReporter) -> GenerationResult:
        if not self.api_key:
            raise ProviderNotConfigured("NANO_BANANA_API_KEY is not set")
        reporter.report(10)
        response = send(
            self.session, "POST", f"{self.api_url}/v1beta/models/{self.model_for(request)}:generateContent",
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
            reason = str(feedback["blockReason"])
            raise BLOCK_REASONS.get(reason, PromptBlocked)(f"prompt blocked: {reason}")
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
        for reason in GRAVITY:
            if reason in reasons:
                raise FINISH_REASONS[reason](f"finishReason {reason}: {' '.join(texts)[:200]}")
        raise NoMediaReturned(f"finishReason {', '.join(reasons) or 'missing'}: {' '.join(texts)[:200]}")
