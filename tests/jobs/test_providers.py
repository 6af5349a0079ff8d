"""The real clients against stub servers speaking the Gemini and Kling protocols, and the fake."""
from __future__ import annotations

import base64
import io
import socket
import time

import jwt
import pytest
from django.utils import translation
from PIL import Image

from jobs.exceptions import JobError
from jobs.providers import base
from jobs.providers.base import (
    BadInput,
    FinalProviderError,
    GenerationRequest,
    JobCancelled,
    MalformedResponse,
    NoMediaReturned,
    ProgressReporter,
    ProviderAuthError,
    ProviderBillingError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    ResultDownloadFailed,
    ResultExpired,
    ResultTooLarge,
    SafetyBlocked,
    UnsafeResultURL,
)
from jobs.providers.fake import FakeProvider
from jobs.providers.gemini import GeminiImageProvider
from jobs.providers.http import checked_address, download_result
from jobs.providers.kling import KlingVideoProvider, make_token, split_key
from jobs.providers.registry import provider_name_for

IMAGE = GenerationRequest(kind="image", prompt="a red fox in the snow", aspect_ratio="16:9")


def png(size=(320, 320)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 200, 10)).save(buffer, format="PNG")
    return buffer.getvalue()


class Recorder(ProgressReporter):
    def __init__(self, cancel_after: int | None = None):
        self.values: list[int] = []
        self.cancel_after = cancel_after

    def report(self, progress: int) -> None:
        self.values.append(progress)
        self.check_cancelled()

    def check_cancelled(self) -> None:
        if self.cancel_after is not None and len(self.values) >= self.cancel_after:
            raise JobCancelled()


# --- Gemini ---------------------------------------------------------------------------------


def gemini(stub, **kwargs) -> GeminiImageProvider:
    return GeminiImageProvider(api_key=stub.api_key, api_url=stub.url, **kwargs)


def test_gemini_success_sends_the_documented_request_and_finds_the_image_after_text(gemini_stub):
    result = gemini(gemini_stub).generate_with_retry(IMAGE)
    assert Image.open(io.BytesIO(result.media[0].content)).format == "PNG"
    assert result.media[0].mime_type == "image/png"
    assert result.text == "Here is your picture."
    request = gemini_stub.requests[0]
    assert request["path"] == "/v1beta/models/gemini-2.5-flash-image:generateContent"
    assert request["headers"]["x-goog-api-key"] == gemini_stub.api_key
    assert request["body"]["generationConfig"]["responseModalities"] == ["TEXT", "IMAGE"]
    assert request["body"]["generationConfig"]["imageConfig"] == {"aspectRatio": "16:9"}
    assert request["body"]["contents"][0]["parts"] == [{"text": IMAGE.prompt}]


def test_gemini_edit_sends_the_input_picture_as_inline_data(gemini_stub):
    picture = png()
    gemini(gemini_stub).generate(
        GenerationRequest(kind="image_edit", prompt="make it blue", input_image=picture, input_mime="image/png"),
        ProgressReporter(),
    )
    parts = gemini_stub.requests[0]["body"]["contents"][0]["parts"]
    assert parts[1] == {"inline_data": {"mime_type": "image/png", "data": base64.b64encode(picture).decode()}}


@pytest.mark.parametrize(
    ("behaviour", "error"),
    [
        ("prompt_blocked", SafetyBlocked),
        ("image_safety", SafetyBlocked),
        ("no_image", NoMediaReturned),
        ("bad_request", BadInput),
    ],
)
def test_gemini_final_errors_fail_at_once_without_retry(gemini_stub, behaviour, error):
    gemini_stub.script(behaviour, "success")
    with pytest.raises(error) as caught:
        gemini(gemini_stub).generate_with_retry(IMAGE)
    assert not caught.value.retryable
    assert len(gemini_stub.requests) == 1


def test_gemini_wrong_key_is_a_final_error(gemini_stub):
    with pytest.raises(FinalProviderError):
        GeminiImageProvider(api_key="wrong", api_url=gemini_stub.url).generate_with_retry(IMAGE)
    assert len(gemini_stub.requests) == 1


def test_gemini_429_then_success_retries_and_succeeds(gemini_stub):
    gemini_stub.script("rate_limit", "server_error")
    result = gemini(gemini_stub).generate_with_retry(IMAGE)
    assert result.media
    assert len(gemini_stub.requests) == 3


def test_gemini_repeated_500_gives_up_after_the_configured_attempts(gemini_stub, settings):
    gemini_stub.script(*["server_error"] * 10)
    with pytest.raises(ProviderUnavailable):
        gemini(gemini_stub).generate_with_retry(IMAGE)
    assert len(gemini_stub.requests) == settings.AI_RETRY_ATTEMPTS


def test_gemini_time_out_is_retryable(gemini_stub, settings):
    settings.AI_RETRY_ATTEMPTS = 1
    gemini_stub.script("timeout")
    with pytest.raises(ProviderTimeout) as caught:
        gemini(gemini_stub, timeout=0.2).generate_with_retry(IMAGE)
    assert caught.value.retryable


def test_gemini_malformed_body_is_retried_then_reported(gemini_stub, settings):
    gemini_stub.script("malformed", "malformed", "malformed")
    with pytest.raises(MalformedResponse):
        gemini(gemini_stub).generate_with_retry(IMAGE)
    gemini_stub.script("malformed")
    assert gemini(gemini_stub).generate_with_retry(IMAGE).media  # malformed once, then success


def test_gemini_unreachable_server_is_a_retryable_error():
    provider = GeminiImageProvider(api_key="k", api_url="http://127.0.0.1:9", timeout=0.5)
    with pytest.raises(ProviderUnavailable):
        provider.generate(IMAGE, ProgressReporter())


def test_a_provider_error_is_a_jobs_error_carrying_the_customers_message_and_the_detail_for_logs():
    error = SafetyBlocked("finishReason SAFETY")
    assert isinstance(error, JobError)  # one root for jobs' errors
    assert str(error) == "finishReason SAFETY" and error.message is SafetyBlocked.user_message
    assert str(ProviderUnavailable()) == "unavailable"
    overridden = FinalProviderError("task 7 timed out", user_message=ProviderTimeout.user_message)
    assert overridden.message is overridden.user_message is ProviderTimeout.user_message


def test_backoff_is_exponential_with_jitter_and_honours_retry_after():
    policy = base.RetryPolicy(attempts=5, base_delay=1.0, max_delay=30.0)
    delays = [policy.delay(3, RateLimited()) for _ in range(200)]
    assert all(0 <= d <= 8.0 for d in delays) and len({round(d, 3) for d in delays}) > 100
    assert policy.delay(0, RateLimited(retry_after=7)) >= 7


# --- Kling ----------------------------------------------------------------------------------

VIDEO = GenerationRequest(kind="video_text", prompt="waves at sunset", aspect_ratio="9:16", duration=5, mode="std")


def kling(stub, **kwargs) -> KlingVideoProvider:
    return KlingVideoProvider(api_key=f"{stub.access_key}:{stub.secret_key}", api_url=stub.url, poll_interval=0.01, **kwargs)


def test_kling_key_holds_access_and_secret_and_signs_an_hs256_jwt():
    secret = "s" * 32
    assert split_key(f"ak:{secret}") == ("ak", secret)
    token = make_token("ak", secret, now=1_000_000)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, secret, algorithms=["HS256"], options={"verify_exp": False, "verify_nbf": False})
    assert claims == {"iss": "ak", "exp": 1_001_800, "nbf": 999_995}


def test_kling_text_to_video_creates_polls_reports_progress_and_downloads(kling_stub):
    progress = Recorder()
    result = kling(kling_stub).generate_with_retry(VIDEO, progress)
    assert result.media[0].mime_type == "video/mp4" and b"ftyp" in result.media[0].content
    methods = [(r["method"], r["path"].split("/")[3] if r["path"].startswith("/v1") else "file") for r in kling_stub.requests]
    assert methods[0] == ("POST", "text2video")
    assert ("GET", "text2video") in methods and methods[-1] == ("GET", "file")
    body = kling_stub.requests[0]["body"]
    assert body == {"model_name": "kling-v2-1", "prompt": VIDEO.prompt, "mode": "std", "duration": "5", "aspect_ratio": "9:16"}
    assert progress.values == sorted(progress.values) and progress.values[-1] == 95


def test_kling_image_to_video_sends_the_picture_in_base64(kling_stub):
    picture = png()
    request = GenerationRequest(kind="video_image", prompt="it moves", input_image=picture, duration=10, mode="pro")
    kling(kling_stub).generate_with_retry(request)
    body = kling_stub.requests[0]["body"]
    assert kling_stub.requests[0]["path"] == "/v1/videos/image2video"
    assert body["image"] == base64.b64encode(picture).decode() and body["duration"] == "10" and body["mode"] == "pro"


def test_kling_bad_token_is_refused_as_an_auth_error(kling_stub):
    provider = KlingVideoProvider(api_key=f"{kling_stub.access_key}:{'w' * 32}", api_url=kling_stub.url)
    with pytest.raises(ProviderAuthError):
        provider.generate_with_retry(VIDEO)
    assert len(kling_stub.requests) == 1


@pytest.mark.parametrize("behaviour", ["rate_limit", "concurrency_limit", "server_error"])
def test_kling_1302_1303_and_5xx_are_retried_then_succeed(kling_stub, behaviour):
    kling_stub.script(behaviour)
    assert kling(kling_stub).generate_with_retry(VIDEO).media
    creates = [r for r in kling_stub.requests if r["method"] == "POST"]
    assert len(creates) == 2


@pytest.mark.parametrize(
    ("behaviour", "error"),
    [("safety", SafetyBlocked), ("billing", ProviderBillingError), ("task_failed", SafetyBlocked),
     ("expired_url", ResultExpired)],
)
def test_kling_final_errors_fail_at_once(kling_stub, behaviour, error):
    kling_stub.script(behaviour)
    with pytest.raises(error):
        kling(kling_stub).generate_with_retry(VIDEO)
    assert len([r for r in kling_stub.requests if r["method"] == "POST"]) == 1


def test_kling_repeated_500_gives_up(kling_stub, settings):
    kling_stub.script(*["server_error"] * 5)
    with pytest.raises(ProviderUnavailable):
        kling(kling_stub).generate_with_retry(VIDEO)
    assert len(kling_stub.requests) == settings.AI_RETRY_ATTEMPTS


def test_kling_time_out_and_malformed_body_are_retryable(kling_stub, settings):
    settings.AI_RETRY_ATTEMPTS = 1
    kling_stub.script("timeout")
    with pytest.raises(ProviderTimeout):
        kling(kling_stub, timeout=0.2).generate_with_retry(VIDEO)
    kling_stub.script("malformed")
    with pytest.raises(MalformedResponse):
        kling(kling_stub).generate_with_retry(VIDEO)


def test_kling_poll_error_is_retried_by_polling_not_by_a_second_task(kling_stub):
    kling_stub.script("poll_error")
    assert kling(kling_stub).generate_with_retry(VIDEO).media
    assert len([r for r in kling_stub.requests if r["method"] == "POST"]) == 1


def test_kling_cancel_is_noticed_at_the_next_poll(kling_stub):
    with pytest.raises(JobCancelled):
        kling(kling_stub).generate_with_retry(VIDEO, Recorder(cancel_after=2))
    assert not any(r["path"].startswith("/files/") for r in kling_stub.requests)


# --- Kling: the result download ---------------------------------------------------------------


def creates(stub) -> int:
    return len([r for r in stub.requests if r["method"] == "POST"])


def downloads(stub) -> int:
    return len([r for r in stub.requests if r["path"].startswith("/files/")])


def test_kling_download_that_fails_twice_is_retried_as_a_download_of_the_one_task(kling_stub, settings):
    settings.AI_RETRY_ATTEMPTS = 3
    kling_stub.script("flaky_download")
    result = kling(kling_stub).generate_with_retry(VIDEO)
    assert result.media[0].content[4:8] == b"ftyp"
    assert creates(kling_stub) == 1 and downloads(kling_stub) == 3


def test_kling_download_that_keeps_failing_ends_final_without_a_second_task(kling_stub, settings):
    settings.AI_RETRY_ATTEMPTS = 2
    kling_stub.script("flaky_download")
    with pytest.raises(ResultDownloadFailed) as failure:
        kling(kling_stub).generate_with_retry(VIDEO)
    assert not failure.value.retryable
    with translation.override("en"):
        assert "could not be downloaded" in str(failure.value.user_message)
    assert creates(kling_stub) == 1 and downloads(kling_stub) == 2


def test_kling_polls_that_keep_failing_end_final_without_a_second_task(kling_stub):
    kling_stub.script("poll_down")
    with pytest.raises(FinalProviderError):
        kling(kling_stub).generate_with_retry(VIDEO)
    assert creates(kling_stub) == 1


def test_kling_http_result_url_is_refused_when_the_api_is_not_a_loopback_stub(kling_stub):
    with pytest.raises(UnsafeResultURL) as failure:
        kling(kling_stub, local_results=False).generate_with_retry(VIDEO)
    with translation.override("en"):
        assert "could not be downloaded" in str(failure.value.user_message)
    assert creates(kling_stub) == 1 and downloads(kling_stub) == 0


def test_only_a_loopback_api_url_allows_local_results():
    def provider(url):
        return KlingVideoProvider(api_key="a:s", api_url=url)

    assert provider("http://127.0.0.1:8001").local_results and provider("http://localhost:9").local_results
    assert not provider("https://api-singapore.klingai.com").local_results
    assert not provider("http://10.0.0.5:8000").local_results


def test_a_loopback_result_url_is_refused_unless_loopback_is_allowed(kling_stub):
    kling(kling_stub).generate_with_retry(VIDEO)
    url = f"{kling_stub.url}/files/{next(iter(kling_stub.tasks))}.mp4"
    before = downloads(kling_stub)
    with pytest.raises(UnsafeResultURL):
        download_result(url, max_bytes=10**6, deadline=5, timeout=5, allow_http=True, allow_loopback=False)
    assert downloads(kling_stub) == before  # refused before connecting


@pytest.mark.parametrize("behaviour", ["redirect_private", "redirect_link_local"])
def test_a_redirect_to_an_internal_address_is_refused_at_that_hop(kling_stub, behaviour):
    kling_stub.script(behaviour)
    with pytest.raises(UnsafeResultURL):
        kling(kling_stub).generate_with_retry(VIDEO)
    assert creates(kling_stub) == 1 and downloads(kling_stub) == 1


def test_a_redirect_to_an_allowed_address_is_followed(kling_stub):
    kling_stub.script("redirect_home")
    assert kling(kling_stub).generate_with_retry(VIDEO).media[0].content[4:8] == b"ftyp"
    assert [r["path"].rsplit("?", 1)[-1] for r in kling_stub.requests if r["path"].startswith("/files/")][-1] == "moved=1"


@pytest.mark.parametrize("behaviour", ["success", "unsized_download"])
def test_a_video_over_the_byte_cap_is_refused_and_not_retried(kling_stub, settings, behaviour):
    settings.VIDEO_MAX_BYTES = 50  # the stub's video has 88 bytes
    kling_stub.script(behaviour)
    with pytest.raises(ResultTooLarge):
        kling(kling_stub).generate_with_retry(VIDEO)
    assert creates(kling_stub) == 1 and downloads(kling_stub) == 1


def test_a_download_over_the_deadline_is_cut_and_retried_as_a_download(kling_stub, settings):
    settings.VIDEO_DOWNLOAD_TIMEOUT = 0.3  # the stub drips the video over 1 s, each piece well within the read timeout
    settings.AI_RETRY_ATTEMPTS = 2
    kling_stub.script("slow_download")
    started = time.monotonic()
    with pytest.raises(ResultDownloadFailed) as failure:
        kling(kling_stub, timeout=5).generate_with_retry(VIDEO)
    assert isinstance(failure.value.__cause__, ProviderTimeout)
    assert time.monotonic() - started < 1.5
    assert creates(kling_stub) == 1 and downloads(kling_stub) == 2


def test_a_slow_download_within_the_deadline_completes(kling_stub):
    kling_stub.script("slow_download")
    assert kling(kling_stub).generate_with_retry(VIDEO).media[0].content[4:8] == b"ftyp"


def fake_dns(monkeypatch, answers: dict[str, list]):
    """``socket.getaddrinfo`` answering ``answers[host]`` (one list per lookup, the last repeated)."""
    real = socket.getaddrinfo
    lookups: dict[str, int] = {}

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in answers:
            return real(host, port, *args, **kwargs)
        count = lookups[host] = lookups.get(host, 0) + 1
        addresses = answers[host][min(count, len(answers[host])) - 1]
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in addresses]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return lookups


@pytest.mark.parametrize("address", [
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
    "224.0.0.1", "240.0.0.1", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
])
def test_internal_addresses_are_refused_even_beside_a_public_one(monkeypatch, address):
    fake_dns(monkeypatch, {"cdn.example": [["93.184.216.34", address]], "bad.example": [[address]]})
    with pytest.raises(UnsafeResultURL):
        checked_address("cdn.example", 443)
    with pytest.raises(UnsafeResultURL):
        checked_address("bad.example", 443)


def test_a_public_address_is_accepted_and_loopback_only_when_allowed(monkeypatch):
    fake_dns(monkeypatch, {"cdn.example": [["93.184.216.34", "2606:2800:220:1::1"]], "local.example": [["127.0.0.1"]]})
    assert checked_address("cdn.example", 443) == "93.184.216.34"
    assert checked_address("local.example", 80, allow_loopback=True) == "127.0.0.1"
    with pytest.raises(UnsafeResultURL):
        checked_address("local.example", 80)


def test_the_download_connects_to_the_checked_address_not_to_a_second_lookup(kling_stub, monkeypatch):
    kling(kling_stub).generate_with_retry(VIDEO)
    task_id = next(iter(kling_stub.tasks))
    port = kling_stub.server.server_address[1]
    # DNS rebinding: the name answers loopback (allowed here) once, then an address that must never be used.
    lookups = fake_dns(monkeypatch, {"video.kling.test": [["127.0.0.1"], ["10.0.0.9"]]})
    content = download_result(f"http://video.kling.test:{port}/files/{task_id}.mp4", max_bytes=10**6, deadline=5,
                              timeout=2, allow_http=True, allow_loopback=True)
    assert content[4:8] == b"ftyp" and lookups == {"video.kling.test": 1}
    assert kling_stub.requests[-1]["headers"]["Host"] == f"video.kling.test:{port}"


def test_ftp_and_other_schemes_are_refused():
    for url in ("ftp://example.com/video.mp4", "file:///etc/passwd", "http://example.com/video.mp4"):
        with pytest.raises(UnsafeResultURL):
            download_result(url, max_bytes=10, deadline=1, timeout=1)


# --- the fake and the registry --------------------------------------------------------------


def test_fake_provider_draws_a_real_png_from_the_prompt():
    first = FakeProvider(latency=0).generate(IMAGE, ProgressReporter()).media[0]
    other = FakeProvider(latency=0).generate(GenerationRequest(kind="image", prompt="something else"), ProgressReporter()).media[0]
    picture = Image.open(io.BytesIO(first.content))
    assert picture.format == "PNG" and picture.size == (1376, 768)  # Gemini's 1K 16:9
    assert first.content != other.content


def test_fake_provider_makes_a_real_mp4():
    media = FakeProvider(latency=0).generate(VIDEO, ProgressReporter()).media[0]
    assert media.mime_type == "video/mp4"
    assert media.content[4:8] == b"ftyp" and len(media.content) > 1000


def test_fake_provider_falls_back_to_a_gif_when_ffmpeg_fails(monkeypatch):
    import imageio.v3

    def broken(*args, **kwargs):
        raise RuntimeError("no ffmpeg here")

    monkeypatch.setattr(imageio.v3, "imwrite", broken)
    media = FakeProvider(latency=0).generate(VIDEO, ProgressReporter()).media[0]
    animation = Image.open(io.BytesIO(media.content))
    assert media.mime_type == "image/gif" and animation.format == "GIF" and animation.n_frames > 1


def test_fake_provider_latency_reports_progress_and_failure_rate_fails():
    progress = Recorder()
    FakeProvider(latency=0.1).generate(IMAGE, progress)
    assert progress.values and progress.values[-1] == 90
    with pytest.raises(ProviderUnavailable):
        FakeProvider(latency=0, failure_rate=1.0).generate(IMAGE, ProgressReporter())


def test_real_providers_are_chosen_when_keys_are_set_unless_a_setting_says_otherwise(settings):
    settings.AI_PROVIDER = "auto"
    settings.NANO_BANANA_API_KEY, settings.KLING_API_KEY = "", ""
    assert provider_name_for("image") == "fake" and provider_name_for("video_text") == "fake"
    settings.NANO_BANANA_API_KEY, settings.KLING_API_KEY = "g", "a:s"
    assert provider_name_for("image_edit") == "gemini" and provider_name_for("video_image") == "kling"
    settings.AI_PROVIDER = "fake"
    assert provider_name_for("image") == "fake"
    settings.AI_PROVIDER, settings.NANO_BANANA_API_KEY = "real", ""
    assert provider_name_for("image") == "gemini"
