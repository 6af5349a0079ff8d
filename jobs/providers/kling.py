"""Kling video generation through its task API.

Authentication is a JWT (HS256) signed with the secret key, issued by the access key
(``iss``), valid from 5 seconds ago (``nbf``) for 30 minutes (``exp``), sent as a Bearer token.
A task is created with ``POST /v1/videos/text2video`` or ``/v1/videos/image2video``, carrying
genbot's ``external_task_id`` (unique per account: a second create with it is refused) and a
``callback_url`` Kling POSTs the task object to on each status change. It is looked up with
``GET /v1/videos/<endpoint>/<task_id or external_task_id>`` (404: no such task) until
``task_status`` (submitted, processing) is ``succeed`` or ``failed``; the video URL in
``task_result.videos`` expires, so it is downloaded at once.

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

The create's body (``build_body``)::

    text2video:  {"model_name": "kling-v2-6", "prompt": "...", "negative_prompt": "...",
                  "mode": "std"|"pro", "duration": "5"|"10", "aspect_ratio": "16:9"|"9:16"|"1:1",
                  "sound": "on"|"off", "external_task_id": "...", "callback_url": "..."}
    image2video: {"model_name": ..., "image": "<base64, no data: prefix>", "image_tail": "<base64>",
                  "prompt", "negative_prompt", "mode", "duration", "sound", "external_task_id",
                  "callback_url"}     (no aspect_ratio: the video takes the picture's)

``model_name`` is the request's model id (``KLING_MODEL`` when it names none). What each model
takes is ``MODELS``: its modes; ``negative_prompt`` (every model); ``sound`` (kling-v2-6 only, in
``pro`` mode only; std is silent); ``image_tail``, the last frame of an image-to-video (``pro``
mode only). A field the model would refuse is left out rather than sent; a model id ``MODELS``
does not know gets the basic fields only (model_name, prompt, mode, duration, aspect_ratio or
image). Unknown fields and values are refused with 400 code 1201.
"""
from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass

import jwt
import requests
from django.conf import settings

from .. import catalog
from ..models import JobKind
from .base import (
    BadInput,
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
    RemoteTask,
    RetryPolicy,
    SafetyBlocked,
    TaskAlreadyExists,
    TaskProvider,
    call_with_retry,
    task_progress,
)
from .http import download_result, is_loopback_url, json_body, retry_after, send, shared_session

POLL_ERRORS_TOLERATED = 5


@dataclass(frozen=True)
class ModelSpec:
    """What one Kling video model takes in a create."""

    modes: tuple[str, ...] = catalog.VIDEO_MODES
    negative_prompt: bool = False
    sound_modes: tuple[str, ...] = ()  # the modes in which ``sound`` may be sent
    tail_modes: tuple[str, ...] = ()  # the modes in which ``image_tail`` may be sent


MODELS: dict[str, ModelSpec] = {
    "kling-v2-1": ModelSpec(negative_prompt=True, tail_modes=("pro",)),
    "kling-v2-5-turbo": ModelSpec(negative_prompt=True, tail_modes=("pro",)),
    "kling-v2-6": ModelSpec(negative_prompt=True, sound_modes=("pro",), tail_modes=("pro",)),
}
BASIC = ModelSpec()
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


class KlingVideoProvider(TaskProvider):
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
        self.session = session or shared_session()
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

    def _call(self, method: str, path: str, *, missing_ok: bool = False, **kwargs) -> dict | None:
        """The answer's ``data``; with ``missing_ok``, None for a 404 (no such task)."""
        response = send(self.session, method, f"{self.api_url}{path}", timeout=self.timeout,
                        headers=self._headers(), **kwargs)
        if missing_ok and response.status_code == 404:
            return None
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
        model = request.model or self.model
        spec = MODELS.get(model, BASIC)
        mode = request.mode if request.mode in spec.modes else spec.modes[0]
        body = {
            "model_name": model,
            "prompt": request.prompt,
            "mode": mode,
            "duration": str(request.duration if request.duration in catalog.VIDEO_DURATIONS else catalog.VIDEO_DURATIONS[0]),
        }
        if request.negative_prompt and spec.negative_prompt:
            body["negative_prompt"] = request.negative_prompt
        if mode in spec.sound_modes:
            body["sound"] = "on" if request.sound else "off"
        if request.kind == JobKind.VIDEO_IMAGE:
            if not request.input_image:
                raise BadInput("image2video needs an image")
            body["image"] = base64.b64encode(request.input_image).decode("ascii")
            if request.end_image and mode in spec.tail_modes:
                body["image_tail"] = base64.b64encode(request.end_image).decode("ascii")
        elif request.aspect_ratio in catalog.VIDEO_ASPECT_RATIOS:
            body["aspect_ratio"] = request.aspect_ratio
        return body

    # --- the task ---

    def create_task(self, request: GenerationRequest, *, external_id: str = "", callback_url: str = "") -> str:
        if not (self.access_key and self.secret_key):
            raise ProviderNotConfigured("KLING_API_KEY must be access:secret")
        body = self.build_body(request)
        if external_id:
            body["external_task_id"] = external_id
        if callback_url:
            body["callback_url"] = callback_url
        try:
            created = self._call("POST", f"/v1/videos/{self.endpoint(request.kind)}", json=body)
        except BadInput as exc:
            if external_id and "exist" in str(exc).lower():
                raise TaskAlreadyExists(str(exc)) from exc
            raise
        task_id = created.get("task_id")
        if not task_id:
            raise MalformedResponse("no task_id in the answer")
        return str(task_id)

    def find_task(self, kind: str, *, external_id: str) -> RemoteTask | None:
        # The query takes the task id or the external id in the same place of the path.
        data = self._call("GET", f"/v1/videos/{self.endpoint(kind)}/{external_id}", missing_ok=True)
        return None if data is None else self.parse_task(data)

    def get_task(self, kind: str, *, task_id: str) -> RemoteTask:
        return self.parse_task(self._call("GET", f"/v1/videos/{self.endpoint(kind)}/{task_id}"))

    @staticmethod
    def parse_task(data: dict) -> RemoteTask:
        task_id, status = str(data.get("task_id") or ""), data.get("task_status")
        if not task_id:
            raise MalformedResponse("task without task_id")
        message = str(data.get("task_status_msg") or "")
        if status in ("submitted", "processing"):
            return RemoteTask(task_id=task_id, state=RemoteTask.RUNNING, message=message)
        if status == "failed":
            return RemoteTask(task_id=task_id, state=RemoteTask.FAILED, message=message)
        if status != "succeed":
            raise MalformedResponse(f"task {task_id}: unknown status {status!r}")
        videos = (data.get("task_result") or {}).get("videos") or []
        urls = tuple(str(video["url"]) for video in videos if isinstance(video, dict) and video.get("url"))
        return RemoteTask(task_id=task_id, state=RemoteTask.SUCCEEDED, message=message, result_urls=urls)

    def failure(self, task: RemoteTask) -> ProviderError:
        if any(word in task.message.lower() for word in SAFETY_WORDS):
            return SafetyBlocked(f"task {task.task_id} failed: {task.message}")
        return FinalProviderError(f"task {task.task_id} failed: {task.message}")

    def fetch_result(self, task: RemoteTask, reporter: ProgressReporter) -> GenerationResult:
        if not task.result_urls:
            raise ResultDownloadFailed(f"task {task.task_id} succeeded without a video")
        content = self.fetch_video(task.task_id, task.result_urls[0], reporter)
        return GenerationResult(media=[GeneratedMedia(content=content, mime_type="video/mp4")])

    # --- in one call (tests, a shell): create, poll until done, download ---

    def generate(self, request: GenerationRequest, reporter: ProgressReporter) -> GenerationResult:
        task_id = self.create_task(request)
        reporter.report(5)
        task = self.wait_for(request.kind, task_id, reporter)
        reporter.report(95)
        return self.fetch_result(task, reporter)

    def wait_for(self, kind: str, task_id: str, reporter: ProgressReporter) -> RemoteTask:
        started = time.monotonic()
        transient = 0
        while True:
            try:
                task = self.get_task(kind, task_id=task_id)
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
            except MalformedResponse as exc:
                raise FinalProviderError(str(exc), user_message=MalformedResponse.user_message) from exc
            if task.state == RemoteTask.SUCCEEDED:
                return task
            if task.state == RemoteTask.FAILED:
                raise self.failure(task)
            elapsed = time.monotonic() - started
            if elapsed > self.task_timeout:
                # Not retryable: a new task would be a second paid generation.
                raise FinalProviderError(f"task {task_id} still running after {elapsed:.0f}s",
                                         user_message=ProviderTimeout.user_message)
            reporter.report(task_progress(elapsed, self.task_timeout))
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
