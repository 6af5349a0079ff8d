"""The one interface every AI provider implements, its errors, and retries with backoff.

Errors are sorted into two families:
- ``RetryableProviderError``: the same request may succeed later (429, 5xx, time-outs, Kling
  1302/1303, a malformed body). ``generate_with_retry`` waits with exponential backoff and full
  jitter, then tries again.
- ``FinalProviderError``: trying again cannot help (safety block, bad input, the provider
  account's billing, an expired or refused result URL). The job fails at once.
Each error carries a short ``code`` for logs and the admin, and a ``user_message`` fit to show
the customer (lazy, so it renders in the customer's language). They are jobs' errors
(``jobs.exceptions.JobError``), the customer's message being the base's ``message``; ``str(exc)``
is the provider's detail, for logs.
"""
from __future__ import annotations

import logging
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from .. import catalog
from genbot.errors import kind_of

from ..exceptions import JobError

logger = logging.getLogger(__name__)

T = TypeVar("T")


# --- errors -----------------------------------------------------------------------------------


class ProviderError(JobError):
    code = "provider_error"
    retryable = False
    user_message = _("The generation failed. The money was returned to your balance.")

    def __init__(self, detail: str = "", *, user_message=None, retry_after: float | None = None):
        self.detail = detail
        if user_message is not None:
            self.user_message = user_message
        self.retry_after = retry_after
        super().__init__(self.user_message)

    def __str__(self) -> str:
        return self.detail or self.code


class RetryableProviderError(ProviderError):
    code = "temporary"
    retryable = True
    user_message = _("The generation service is busy right now. The money was returned; try again later.")


def _kind(name: str, base: type[ProviderError], code: str, user_message=None, *, doc: str = "") -> type[ProviderError]:
    """One kind of provider error: ``base`` with its own ``code``, and its own customer message
    when it has one (otherwise the base's)."""
    own_message = {} if user_message is None else {"user_message": user_message}
    return kind_of(base, name, module=__name__, doc=doc, code=code, **own_message)


# The same request may succeed later.
RateLimited = _kind("RateLimited", RetryableProviderError, "rate_limited")
ProviderUnavailable = _kind("ProviderUnavailable", RetryableProviderError, "unavailable")
ProviderTimeout = _kind("ProviderTimeout", RetryableProviderError, "timeout", _(
    "The generation service did not answer in time. The money was returned; try again."
))
MalformedResponse = _kind("MalformedResponse", RetryableProviderError, "malformed")


class FinalProviderError(ProviderError):
    code = "final"


# Trying again cannot help.
SafetyBlocked = _kind("SafetyBlocked", FinalProviderError, "safety", _(
    "The request was blocked by the content safety filter. Change the description and try "
    "again. The money was returned to your balance."
))
BadInput = _kind("BadInput", FinalProviderError, "bad_input", _(
    "The service could not use this request. Change it and try again. The money was returned."
))
NoMediaReturned = _kind("NoMediaReturned", FinalProviderError, "no_media", _(
    "The service returned no picture for this request. Rephrase it and try again. The money was returned."
))
# What Gemini's promptFeedback.blockReason and finishReason say, each in the customer's words.
PromptBlocked = _kind("PromptBlocked", SafetyBlocked, "prompt_blocked", _(
    "The description was blocked by the content safety filter before any picture was made. Change it "
    "and try again. The money was returned to your balance."
))
ImageSafetyBlocked = _kind("ImageSafetyBlocked", SafetyBlocked, "image_safety", _(
    "The picture came out against the content safety rules and was withheld. Change the description "
    "or the photo and try again. The money was returned to your balance."
))
ProhibitedContent = _kind("ProhibitedContent", SafetyBlocked, "prohibited", _(
    "The service does not make this kind of content. Change the request and try again. The money was "
    "returned to your balance."
))
PersonalDataBlocked = _kind("PersonalDataBlocked", SafetyBlocked, "personal_data", _(
    "The request seems to contain sensitive personal data, which the service refuses. Remove it and try "
    "again. The money was returned to your balance."
))
RecitationBlocked = _kind("RecitationBlocked", FinalProviderError, "recitation", _(
    "The result was too close to an existing protected work and was withheld. Describe something more "
    "of your own and try again. The money was returned to your balance."
))
UnsupportedLanguage = _kind("UnsupportedLanguage", FinalProviderError, "language", _(
    "The service does not understand the language of this description. Try writing it in English. The "
    "money was returned to your balance."
))
ProviderBillingError = _kind("ProviderBillingError", FinalProviderError, "provider_billing", _(
    "The generation service is unavailable at the moment. The money was returned to your balance."
))
ProviderAuthError = _kind("ProviderAuthError", ProviderBillingError, "provider_auth")
ProviderNotConfigured = _kind("ProviderNotConfigured", FinalProviderError, "not_configured")

ResultDownloadFailed = _kind("ResultDownloadFailed", FinalProviderError, "download_failed", _(
    "The result could not be downloaded. The money was returned to your balance."
), doc="The provider made the result (and was paid) but it could not be fetched.")
ResultExpired = _kind("ResultExpired", ResultDownloadFailed, "result_expired")
UnsafeResultURL = _kind("UnsafeResultURL", ResultDownloadFailed, "unsafe_result_url", doc=(
    "The result URL is not public HTTPS: another scheme, an internal address, too many redirects."
))
ResultTooLarge = _kind("ResultTooLarge", ResultDownloadFailed, "result_too_large")


TaskAlreadyExists = _kind("TaskAlreadyExists", FinalProviderError, "task_exists", doc=(
    "The provider already has a task under this job's external id (it was created before)."
))


class JobCancelled(Exception):
    """Raised inside a provider at its next poll once the job was cancelled (or reaped)."""


# --- requests and results ---------------------------------------------------------------------


@dataclass(frozen=True)
class GenerationRequest:
    """What a provider is asked for; which fields a model takes is its catalogue offer's say.

    ``input_image``/``input_mime`` are the first of ``input_images`` (the one picture most kinds
    take); ``model`` is the provider's model id ("" = the provider's setting); ``end_image`` is a
    video's last frame (Kling's ``image_tail``).
    """

    kind: str
    prompt: str
    input_image: bytes | None = None
    input_mime: str = ""
    aspect_ratio: str = ""
    duration: int = catalog.VIDEO_DURATIONS[0]
    mode: str = catalog.VIDEO_MODES[0]
    model: str = ""
    image_size: str = ""
    input_images: tuple[tuple[bytes, str], ...] = ()
    negative_prompt: str = ""
    sound: bool = False
    end_image: bytes | None = None
    end_mime: str = ""


@dataclass(frozen=True)
class GeneratedMedia:
    content: bytes
    mime_type: str

    @property
    def extension(self) -> str:
        return MIME_EXTENSIONS.get(self.mime_type, "bin")


MIME_EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "video/mp4": "mp4",
}


@dataclass(frozen=True)
class GenerationResult:
    media: list[GeneratedMedia]
    # What the provider says the generation cost, in kopecks, when it says; None: the estimate.
    cost: int | None = None
    text: str = ""


@dataclass(frozen=True)
class RemoteTask:
    """A provider's task as its status answer describes it."""

    task_id: str
    state: str  # RUNNING, SUCCEEDED or FAILED
    message: str = ""
    result_urls: tuple[str, ...] = ()

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class ProgressReporter:
    """How a provider talks back to the job running it: progress and the cancel flag.

    The base reporter does nothing (tests and stubs); the worker passes one that records
    progress for the next heartbeat and raises ``JobCancelled`` once the job was cancelled.
    """

    def report(self, progress: int) -> None:
        """Record progress 0-100; may raise ``JobCancelled``."""

    def check_cancelled(self) -> None:
        """Raise ``JobCancelled`` when the job should stop."""


@dataclass
class RetryPolicy:
    attempts: int = field(default_factory=lambda: settings.AI_RETRY_ATTEMPTS)
    # False: a rate limit (429, Kling 1302/1303) is raised at once, for the worker to put the job
    # back in line rather than hold a worker and a slot through the backoff.
    retry_rate_limits: bool = True
    base_delay: float = field(default_factory=lambda: settings.AI_RETRY_BASE_DELAY)
    max_delay: float = field(default_factory=lambda: settings.AI_RETRY_MAX_DELAY)

    def delay(self, attempt: int, error: ProviderError) -> float:
        """Full jitter (AWS architecture blog): uniform in [0, min(max, base * 2**attempt)].

        A provider's Retry-After is honoured as the lower bound.
        """
        ceiling = min(self.max_delay, self.base_delay * (2**attempt))
        wait = random.uniform(0, ceiling)
        if error.retry_after:
            wait = max(wait, min(error.retry_after, self.max_delay))
        return wait


# --- the interface ----------------------------------------------------------------------------


class BaseAIProvider(ABC):
    """Which provider makes which kind is the registry's choice (``registry.provider_name_for``)."""

    name: str = "base"

    @abstractmethod
    def generate(self, request: GenerationRequest, reporter: ProgressReporter) -> GenerationResult:
        """One attempt; raises a ``ProviderError`` subclass on failure."""

    def generate_with_retry(
        self,
        request: GenerationRequest,
        reporter: ProgressReporter | None = None,
        *,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> GenerationResult:
        """``generate`` with retries of retryable errors; a final error is raised at once.

        Unknown exceptions are not retried: they are bugs, and the job fails with a generic
        message. ``JobCancelled`` passes through untouched. A provider whose attempt is paid
        once it got past a point (a Kling task was created) must not raise a retryable error
        after that point: it retries its later steps itself (see ``call_with_retry``).
        """
        reporter = reporter or ProgressReporter()
        return call_with_retry(lambda: self.generate(request, reporter), reporter, policy=policy, sleep=sleep,
                               what=self.name)


class TaskProvider(BaseAIProvider):
    """A provider whose generation is a remote task: created once (paid), then polled.

    The worker creates the task under an external id derived from the job, records the task id,
    and polls it in short separate runs (``jobs.services.polling``), so a waiting video holds no
    worker; a run that died before recording the id finds the task by the external id.
    ``task_timeout``: seconds a task may run before its job is failed.
    """

    task_timeout: float = 900.0

    @abstractmethod
    def create_task(self, request: GenerationRequest, *, external_id: str, callback_url: str = "") -> str:
        """Create the task; returns its id. ``TaskAlreadyExists`` when the external id is taken."""

    @abstractmethod
    def find_task(self, kind: str, *, external_id: str) -> RemoteTask | None:
        """The task created under ``external_id``; None when there is none."""

    @abstractmethod
    def get_task(self, kind: str, *, task_id: str) -> RemoteTask:
        """The task's status now."""

    @abstractmethod
    def failure(self, task: RemoteTask) -> ProviderError:
        """The error a failed task ends its job with."""

    @abstractmethod
    def fetch_result(self, task: RemoteTask, reporter: ProgressReporter) -> GenerationResult:
        """Download what a succeeded task made; never starts a new task."""


def task_progress(elapsed: float, task_timeout: float) -> int:
    """Progress shown while a task runs: creeps towards 90 % over the usual time, never reaching it."""
    expected = 60.0 if task_timeout > 60 else float(task_timeout)
    return 10 + int(80 * min(elapsed / (expected * 3), 1) ** 0.5 * 0.99)


def call_with_retry(
    attempt: Callable[[], T],
    reporter: ProgressReporter,
    *,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    what: str = "provider",
) -> T:
    """``attempt()`` until it succeeds, retrying ``RetryableProviderError`` with backoff.

    After ``policy.attempts`` attempts the last retryable error is raised; any other exception
    at once. The cancel flag is checked before each attempt and during each wait.
    """
    policy = policy or RetryPolicy()
    tries = 0
    while True:
        reporter.check_cancelled()
        try:
            return attempt()
        except RetryableProviderError as exc:
            if isinstance(exc, RateLimited) and not policy.retry_rate_limits:
                raise
            tries += 1
            if tries >= policy.attempts:
                logger.warning("%s: giving up after %s attempts: %s", what, tries, exc)
                raise
            wait = policy.delay(tries - 1, exc)
            logger.info("%s: %s (attempt %s), retrying in %.2fs", what, exc, tries, wait)
            _sleep_watching(reporter, wait, sleep)


def _sleep_watching(reporter: ProgressReporter, seconds: float, sleep: Callable[[float], None]) -> None:
    """Sleep in short steps so a cancel is noticed during a long backoff."""
    deadline = time.monotonic() + seconds
    while True:
        reporter.check_cancelled()
        left = deadline - time.monotonic()
        if left <= 0:
            return
        sleep(min(left, 1.0))
