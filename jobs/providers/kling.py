"""Kling video generation through its task API.

Authentication is a JWT (HS256) signed with the secret key, issued by the access key
(``iss``), valid from 5 seconds ago (``nbf``) for 30 minutes (``exp``), sent as a Bearer token.
A task is created with ``POST /v1/videos/text2video`` or ``/v1/videos/image2video`` and polled
with ``GET /v1/videos/<endpoint>/<task_id>`` until ``task_status`` is ``succeed`` or
``failed``; the video URL in ``task_result.videos`` expires, so it is downloaded at once.

Once a task is created it is paid for, so nothing after the create may raise a retryable error
(``generate_with_retry`` would create and pay for a second task): polls are retried by polling,
and the download is retried as a download of the same task's URL (``fetch_video``). The URL is
fetched by ``http.download_result``: public HTTPS only, ``VIDEO_MAX_BYTES`` and
``VIDEO_DOWNLOAD_TIMEOUT``; plain HTTP and loopback only when ``KLING_API_URL`` itself is a
loopback stub.

Answers carry a business ``code`` (0 = success) beside the HTTP status; the code decides:
1000-1004 authentication, 1100-1103 the account (arrears, resource pack), 1200-1201 parameters,
1300-1301 platform strategy and content safety, 1302-1303 rate and concurrency limits (retry),
1304 IP whitelist, 5000-5002 server errors (retry).
"""
from __future__ import annotations

import base64
import time
from collections.abc import Callable

import jwt
import requests
from django.conf import settings

from .. import catalog
from ..models import JobKind
from .base import (
    BadInput,
    BaseAIProvider,
    FinalProviderError,
    GeneratedMedia,
    GenerationRequest,
    GenerationResult,
    MalformedResponse,
    ProgressReporter,
    ProviderAuthError,
    ProviderBillingError,
    ProviderError,
    ProviderNotConfigured,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    ResultDownloadFailed,
    RetryableProviderError,
    RetryPolicy,
    SafetyBlocked,
    call_with_retry,
)
from .http import download_result, is_loopback_url, json_body, retry_after, send

POLL_ERRORS_TOLERATED = 5
SAFETY_WORDS = ("risk", "safety", "sensitive", "inappropriate", "violat")


def split_key(value: str) -> tuple[str, str]:
    """``KLING_API_KEY`` holds ``access:secret``."""
    access, _sep, secret = (value or "").partition(":")
    return access.strip(), secret.strip()


def make_token(access_key: str, secret_key: str, *, now: float | None = None, ttl: int = 1800) -> str:
    now = int(now if now is not None else time.time())
    payload = {"iss": access_key, "exp": now + ttl, "nbf": now - 5}
    return jwt.encode(payload, secret_key, algorithm="HS256", headers={"alg": "HS256", "typ": "JWT"})


def error_for(code: int, http_status: int, message: str, response: requests.Response | None = None) -> ProviderError:
    detail = f"HTTP {http_status} code {code}: {message}"
    if 1000 <= code <= 1004 or code == 1304:
        return ProviderAuthError(detail)
    if 1100 <= code <= 1103:
        return ProviderBillingError(detail)
    if code in (1200, 1201):
        return BadInput(detail)
    if code in (1300, 1301):
        return SafetyBlocked(detail)
    if code in (1302, 1303):
        return RateLimited(detail, retry_after=retry_after(response) if response is not None else None)
    if code == 5002 or http_status == 504:
        return ProviderTimeout(detail)
    if 5000 <= code <= 5999 or http_status >= 500:
        return ProviderUnavailable(detail)
    if http_status == 429:
        return RateLimited(detail)
    if http_status in (401, 403):
        return ProviderAuthError(detail)
    return BadInput(detail)


class KlingVideoProvider(BaseAIProvider):
    name = "kling"

    def __init__(self, *, api_key: str | None = None, api_url: str | None = None, model: str | None = None,
                 timeout: float | None = None, poll_interval: float | None = None,
                 task_timeout: float | None = None, session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep, local_results: bool | None = None):
        self.access_key, self.secret_key = split_key(api_key if api_key is not None else settings.KLING_API_KEY)
        self.api_url = (api_url or settings.KLING_API_URL).rstrip("/")
        self.model = model or settings.KLING_MODEL
        self.timeout = timeout if timeout is not None else settings.AI_HTTP_TIMEOUT
        self.poll_interval = poll_interval if poll_interval is not None else settings.KLING_POLL_INTERVAL
        self.task_timeout = task_timeout if task_timeout is not None else settings.KLING_TASK_TIMEOUT
        self.session = session or requests.Session()
        self.sleep = sleep
        # Result URLs over plain HTTP and on loopback: only from a local stub (the default decides
        # by KLING_API_URL), never from the real API.
        self.local_results = is_loopback_url(self.api_url) if local_results is None else local_results
        self.video_max_bytes = settings.VIDEO_MAX_BYTES
        self.download_timeout = settings.VIDEO_DOWNLOAD_TIMEOUT

    # --- protocol ---

    def _headers(self) -> dict:
        token = make_token(self.access_key, self.secret_key)
        return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def _call(self, method: str, path: str, **kwargs) -> dict:
        response = send(self.session, method, f"{self.api_url}{path}", timeout=self.timeout,
                        headers=self._headers(), **kwargs)
        try:
            body = json_body(response)
        except MalformedResponse:
            if response.status_code >= 500:
                raise ProviderUnavailable(f"HTTP {response.status_code}") from None
            raise
        code = body.get("code")
        if response.status_code != 200 or code != 0:
            if not isinstance(code, int):
                code = -1
            raise error_for(code, response.status_code, str(body.get("message", "")), response)
        data = body.get("data")
        if not isinstance(data, dict):
            raise MalformedResponse("answer without data")
        return data

    @staticmethod
    def endpoint(kind: str) -> str:
        return "image2video" if catalog.kind_spec(kind).input_image else "text2video"

    def build_body(self, request: GenerationRequest) -> dict:
        body = {
            "model_name": self.model,
            "prompt": request.prompt,
            "mode": request.mode if request.mode in catalog.VIDEO_MODES else catalog.VIDEO_MODES[0],
            "duration": str(request.duration if request.duration in catalog.VIDEO_DURATIONS else catalog.VIDEO_DURATIONS[0]),
        }
        if request.kind == JobKind.VIDEO_IMAGE:
            if not request.input_image:
                raise BadInput("image2video needs an image")
            body["image"] = base64.b64encode(request.input_image).decode("ascii")
        elif request.aspect_ratio in catalog.VIDEO_ASPECT_RATIOS:
            body["aspect_ratio"] = request.aspect_ratio
        return body

    # --- the generation ---

    def generate(self, request: GenerationRequest, reporter: ProgressReporter) -> GenerationResult:
        if not (self.access_key and self.secret_key):
            raise ProviderNotConfigured("KLING_API_KEY must be access:secret")
        endpoint = self.endpoint(request.kind)
        created = self._call("POST", f"/v1/videos/{endpoint}", json=self.build_body(request))
        task_id = created.get("task_id")
        if not task_id:
            raise MalformedResponse("no task_id in the answer")
        reporter.report(5)
        task = self.wait_for(endpoint, str(task_id), reporter)
        videos = (task.get("task_result") or {}).get("videos") or []
        if not videos or not videos[0].get("url"):
            raise ResultDownloadFailed(f"task {task_id} succeeded without a video")
        reporter.report(95)
        content = self.fetch_video(str(task_id), str(videos[0]["url"]), reporter)
        return GenerationResult(media=[GeneratedMedia(content=content, mime_type="video/mp4")])

    def wait_for(self, endpoint: str, task_id: str, reporter: ProgressReporter) -> dict:
        started = time.monotonic()
        expected = 60.0 if self.task_timeout > 60 else float(self.task_timeout)
        transient = 0
        while True:
            try:
                task = self._call("GET", f"/v1/videos/{endpoint}/{task_id}")
                transient = 0
            except RetryableProviderError as exc:
                # Retried here, not by generate_with_retry: that would start a second paid task.
                transient += 1
                if transient >= POLL_ERRORS_TOLERATED:
                    raise FinalProviderError(f"task {task_id}: {transient} polls failed",
                                             user_message=exc.user_message) from exc
                reporter.check_cancelled()
                self.sleep(self.poll_interval)
                continue
            status = task.get("task_status")
            if status == "succeed":
                return task
            if status == "failed":
                message = str(task.get("task_status_msg") or "")
                if any(word in message.lower() for word in SAFETY_WORDS):
                    raise SafetyBlocked(f"task {task_id} failed: {message}")
                raise FinalProviderError(f"task {task_id} failed: {message}")
            if status not in ("submitted", "processing"):
                raise FinalProviderError(f"task {task_id}: unknown status {status!r}",
                                         user_message=MalformedResponse.user_message)
            elapsed = time.monotonic() - started
            if elapsed > self.task_timeout:
                # Not retryable: a new task would be a second paid generation.
                raise FinalProviderError(f"task {task_id} still {status} after {elapsed:.0f}s",
                                         user_message=ProviderTimeout.user_message)
            # Progress creeps towards 90 % over the usual generation time, never reaching it.
            reporter.report(10 + int(80 * min(elapsed / (expected * 3), 1) ** 0.5 * 0.99))
            self.sleep(self.poll_interval)

    def fetch_video(self, task_id: str, url: str, reporter: ProgressReporter) -> bytes:
        """The video of the succeeded task ``task_id``, download failures retried as downloads.

        Retryable failures (a 5xx, a broken connection, the deadline) are retried here with the
        usual backoff; when they persist the job fails with a final error, never a new task.
        """
        try:
            return call_with_retry(lambda: self.download(url), reporter, policy=RetryPolicy(), sleep=self.sleep,
                                   what=f"{self.name} task {task_id} download")
        except RetryableProviderError as exc:
            raise ResultDownloadFailed(f"task {task_id}: {exc}") from exc

    def download(self, url: str) -> bytes:
        return download_result(
            url, max_bytes=self.video_max_bytes, deadline=self.download_timeout, timeout=self.timeout,
            allow_http=self.local_results, allow_loopback=self.local_results,
        )
