"""Each model id's options on the wire: what the real clients send per model and option, checked
by the stubs against the protocol, what the stubs refuse, every Gemini finish/block reason's
error, and the fake's sizes, lengths and several inputs."""
from __future__ import annotations

import base64
import io

import pytest
import requests
from django.utils import translation
from PIL import Image

from jobs import media
from jobs.providers import gemini as gemini_module
from jobs.providers import kling as kling_module
from jobs.providers.base import (
    BadInput,
    GenerationRequest,
    ImageSafetyBlocked,
    NoMediaReturned,
    PersonalDataBlocked,
    ProgressReporter,
    ProhibitedContent,
    PromptBlocked,
    RecitationBlocked,
    SafetyBlocked,
    UnsupportedLanguage,
)
from jobs.providers.fake import FakeProvider, picture_size
from jobs.providers.gemini import GeminiImageProvider
from jobs.providers.kling import KlingVideoProvider
from standins.providers import GeminiStub, KlingStub


def png(size=(320, 320), colour=(10, 200, 10)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def b64(content: bytes) -> str:
    return base64.b64encode(content).decode()


def pixels(content: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(content)).size


# --- Gemini ---------------------------------------------------------------------------------


def gemini(stub) -> GeminiImageProvider:
    return GeminiImageProvider(api_key=stub.api_key, api_url=stub.url)


def sent(stub) -> dict:
    return stub.requests[-1]["body"]


@pytest.fixture(scope="module")
def shared_stubs():
    """One Gemini and one Kling stub for the module (each test gets them reset): the matrix
    below is many small requests, and a stub per test would cost more than its requests."""
    with GeminiStub(slow_seconds=1.0) as gemini_server, KlingStub(slow_seconds=1.0) as kling_server:
        yield gemini_server, kling_server


@pytest.fixture
def gemini_stub(shared_stubs, settings):
    stub = shared_stubs[0]
    stub.reset()
    settings.NANO_BANANA_API_KEY, settings.GEMINI_API_URL = stub.api_key, stub.url
    return stub


@pytest.fixture
def kling_stub(shared_stubs, settings):
    stub = shared_stubs[1]
    stub.reset()
    settings.KLING_API_KEY, settings.KLING_API_URL = f"{stub.access_key}:{stub.secret_key}", stub.url
    return stub


# Every model with every ratio it takes (at the default size), and every size with one ratio:
# the ratio and the size reach the wire through separate fields, so their product adds no path.
GEMINI_CASES = [
    *((model, ratio, "") for model, spec in gemini_module.MODELS.items() for ratio in spec.aspect_ratios),
    *((model, spec.aspect_ratios[-1], size) for model, spec in gemini_module.MODELS.items() for size in ("1K", "2K", "4K")),
]


@pytest.mark.parametrize(("model", "ratio", "size"), GEMINI_CASES)
def test_gemini_sends_each_models_ratio_and_size_and_the_stub_answers_at_that_size(gemini_stub, model, ratio, size):
    spec = gemini_module.MODELS[model]
    result = gemini(gemini_stub).generate(
        GenerationRequest(kind="image", prompt="a fox", model=model, aspect_ratio=ratio, image_size=size),
        ProgressReporter(),
    )
    assert gemini_stub.requests[-1]["path"] == f"/v1beta/models/{model}:generateContent"
    expected = {"aspectRatio": ratio, **({"imageSize": size} if size and size in spec.image_sizes else {})}
    assert sent(gemini_stub)["generationConfig"]["imageConfig"] == expected
    answered_size = size if size in spec.image_sizes else "1K"
    assert pixels(result.media[0].content) == picture_size(ratio, answered_size)


def test_gemini_2_5_flash_never_gets_an_image_size_the_model_refuses(gemini_stub):
    gemini(gemini_stub).generate(GenerationRequest(kind="image", prompt="p", model="gemini-2.5-flash-image",
                                                   aspect_ratio="16:9", image_size="4K"), ProgressReporter())
    assert sent(gemini_stub)["generationConfig"]["imageConfig"] == {"aspectRatio": "16:9"}
    # Sent anyway, the stub answers as Google does.
    body = {**sent(gemini_stub), "generationConfig": {"responseModalities": ["TEXT", "IMAGE"],
                                                        "imageConfig": {"aspectRatio": "16:9", "imageSize": "4K"}}}
    answer = post_gemini(gemini_stub, "gemini-2.5-flash-image", body)
    assert answer.status_code == 400 and answer.json()["error"]["status"] == "INVALID_ARGUMENT"


def post_gemini(stub, model: str, body: dict) -> requests.Response:
    return requests.post(f"{stub.url}/v1beta/models/{model}:generateContent", json=body,
                         headers={"x-goog-api-key": stub.api_key}, timeout=10)


BASE_BODY = {"contents": [{"role": "user", "parts": [{"text": "a fox"}]}],
             "generationConfig": {"responseModalities": ["TEXT", "IMAGE"]}}


@pytest.mark.parametrize(
    ("model", "change", "message"),
    [
        ("gemini-3-pro-image-preview", {"resolution": "4K"}, 'Unknown name "resolution": Cannot find field.'),
        ("gemini-3-pro-image-preview", {"generationConfig": {"responseModalities": ["IMAGE"], "size": "2K"}},
         "Unknown name \"size\" at 'generation_config'"),
        ("gemini-3-pro-image-preview", {"generationConfig": {"responseModalities": ["IMAGE"],
                                                             "imageConfig": {"aspectRatio": "16:9", "quality": "hd"}}},
         "Unknown name \"quality\" at 'generation_config.image_config'"),
        ("gemini-3-pro-image-preview", {"generationConfig": {"responseModalities": ["IMAGE"],
                                                             "imageConfig": {"aspectRatio": "4:1"}}},
         "Unsupported aspect ratio: 4:1"),
        ("gemini-3-pro-image-preview", {"generationConfig": {"responseModalities": ["IMAGE"],
                                                             "imageConfig": {"imageSize": "4k"}}},
         "Unsupported image size: 4k"),
        ("gemini-2.5-flash-image", {"generationConfig": {"responseModalities": ["IMAGE"],
                                                         "imageConfig": {"imageSize": "2K"}}},
         "imageSize is not supported by gemini-2.5-flash-image"),
        ("gemini-2.5-flash-image", {"contents": [{"role": "user", "parts": [
            {"text": "mix"}, *[{"inline_data": {"mime_type": "image/png", "data": b64(png())}}] * 4]}]},
         "Too many images: 4"),
        ("gemini-3-pro-image-preview", {"contents": [{"role": "user", "parts": [
            {"text": "mix"}, {"inline_data": {"mime_type": "image/gif", "data": b64(png())}}]}]},
         "Unsupported MIME type: image/gif"),
    ],
)
def test_the_gemini_stub_refuses_what_google_refuses(gemini_stub, model, change, message):
    answer = post_gemini(gemini_stub, model, {**BASE_BODY, **change})
    error = answer.json()["error"]
    assert answer.status_code == 400 and error["status"] == "INVALID_ARGUMENT" and message in error["message"]
    assert gemini_stub.stats()["calls"] == 0  # refused before any picture


def test_a_refused_body_is_a_final_bad_input_error_at_once(gemini_stub):
    assert post_gemini(gemini_stub, "gemini-9-image", BASE_BODY).status_code == 404
    with pytest.raises(BadInput):
        GeminiImageProvider(api_key=gemini_stub.api_key, api_url=gemini_stub.url, model="gemini-9-image").generate_with_retry(
            GenerationRequest(kind="image", prompt="p"))


@pytest.mark.parametrize(("model", "most"), [("gemini-2.5-flash-image", 3), ("gemini-3-pro-image-preview", 14),
                                             ("gemini-3.1-flash-image-preview", 14)])
def test_gemini_sends_every_input_picture_up_to_the_models_number(gemini_stub, model, most):
    pictures = tuple((png(colour=(i, 0, 0)), "image/png") for i in range(16))
    gemini(gemini_stub).generate(GenerationRequest(kind="image_edit", prompt="combine them", model=model,
                                                   input_image=pictures[0][0], input_mime="image/png",
                                                   input_images=pictures), ProgressReporter())
    parts = sent(gemini_stub)["contents"][0]["parts"]
    assert parts[0] == {"text": "combine them"}
    assert parts[1:] == [{"inline_data": {"mime_type": "image/png", "data": b64(content)}} for content, _ in pictures[:most]]


def test_a_model_id_the_table_does_not_know_gets_the_basic_fields_only(settings):
    with GeminiStub(model="gemini-4-image") as stub:
        pictures = ((png(), "image/jpeg"), (png(), "image/png"))
        GeminiImageProvider(api_key=stub.api_key, api_url=stub.url).generate(
            GenerationRequest(kind="image_edit", prompt="p", model="gemini-4-image", aspect_ratio="21:9",
                              image_size="2K", input_images=pictures), ProgressReporter())
        body = sent(stub)
    assert body["generationConfig"]["imageConfig"] == {"aspectRatio": "21:9"}
    assert [part.get("inline_data", {}).get("mime_type") for part in body["contents"][0]["parts"]] == [None, "image/jpeg"]


def test_the_request_model_wins_over_the_setting_and_the_setting_fills_in(gemini_stub, settings):
    settings.GEMINI_MODEL = "gemini-3.1-flash-image-preview"
    provider = GeminiImageProvider(api_key=gemini_stub.api_key, api_url=gemini_stub.url)
    provider.generate(GenerationRequest(kind="image", prompt="p", aspect_ratio="8:1", image_size="2K"), ProgressReporter())
    assert gemini_stub.requests[-1]["path"] == "/v1beta/models/gemini-3.1-flash-image-preview:generateContent"
    assert sent(gemini_stub)["generationConfig"]["imageConfig"] == {"aspectRatio": "8:1", "imageSize": "2K"}
    provider.generate(GenerationRequest(kind="image", prompt="p", model="gemini-3-pro-image-preview",
                                        aspect_ratio="8:1"), ProgressReporter())
    assert gemini_stub.requests[-1]["path"] == "/v1beta/models/gemini-3-pro-image-preview:generateContent"
    assert "imageConfig" not in sent(gemini_stub)["generationConfig"]  # 8:1 is 3.1 Flash's only


FINISH_REASONS = {
    "SAFETY": SafetyBlocked, "MODEL_ARMOR": SafetyBlocked, "IMAGE_SAFETY": ImageSafetyBlocked,
    "PROHIBITED_CONTENT": ProhibitedContent, "IMAGE_PROHIBITED_CONTENT": ProhibitedContent,
    "BLOCKLIST": ProhibitedContent, "SPII": PersonalDataBlocked, "RECITATION": RecitationBlocked,
    "IMAGE_RECITATION": RecitationBlocked, "LANGUAGE": UnsupportedLanguage,
    **{reason: NoMediaReturned for reason in (
        "NO_IMAGE", "IMAGE_OTHER", "STOP", "MAX_TOKENS", "OTHER", "MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL",
        "TOO_MANY_TOOL_CALLS", "MISSING_THOUGHT_SIGNATURE", "MALFORMED_RESPONSE", "FINISH_REASON_UNSPECIFIED")},
}
BLOCK_REASONS = {"SAFETY": PromptBlocked, "OTHER": PromptBlocked, "BLOCK_REASON_UNSPECIFIED": PromptBlocked,
                 "IMAGE_SAFETY": PromptBlocked, "BLOCKLIST": ProhibitedContent, "PROHIBITED_CONTENT": ProhibitedContent}


@pytest.mark.parametrize(("behaviour", "error"), [*((f"finish:{reason}", error) for reason, error in FINISH_REASONS.items()),
                                                  *((f"block:{reason}", error) for reason, error in BLOCK_REASONS.items())])
def test_every_finish_and_block_reason_is_a_final_error_with_its_own_customer_message(gemini_stub, behaviour, error):
    gemini_stub.script(behaviour)
    with pytest.raises(error) as caught:
        gemini(gemini_stub).generate_with_retry(GenerationRequest(kind="image", prompt="p"))
    assert type(caught.value) is error and not caught.value.retryable
    assert len(gemini_stub.requests) == 1  # never tried again
    with translation.override("en"):
        english = str(caught.value.message)
    with translation.override("ru"):
        russian = str(caught.value.message)
    assert "money was returned" in english and russian != english and "Деньги" in russian


# --- Kling ----------------------------------------------------------------------------------


def kling(stub) -> KlingVideoProvider:
    return KlingVideoProvider(api_key=f"{stub.access_key}:{stub.secret_key}", api_url=stub.url, poll_interval=0.01)


START, END = png((400, 400), (200, 0, 0)), png((400, 400), (0, 0, 200))
# Per model, each rule of the body once: sound asked in std (dropped) and in pro on and off, an
# end frame in std (dropped) and in pro (sent, with sound asked), a text video's aspect ratio.
KLING_CASES = [
    (model, kind, mode, sound, end)
    for model in kling_module.MODELS
    for kind, mode, sound, end in (("video_text", "std", True, False), ("video_text", "pro", True, False),
                                   ("video_text", "pro", False, False), ("video_image", "std", False, True),
                                   ("video_image", "pro", True, True), ("video_image", "pro", False, False))
]


@pytest.mark.parametrize(("model", "kind", "mode", "sound", "end"), KLING_CASES)
def test_kling_sends_what_each_model_takes_and_the_stub_accepts_it(kling_stub, model, kind, mode, sound, end):
    request = GenerationRequest(kind=kind, prompt="waves", model=model, mode=mode, duration=10, sound=sound,
                                aspect_ratio="9:16", negative_prompt="blur, text",
                                input_image=START if kind == "video_image" else None,
                                end_image=END if end else None)
    kling(kling_stub).create_task(request, external_id=f"genbot-{model}-{kind}-{mode}-{sound}-{end}")
    body = kling_stub.requests[-1]["body"]
    expected = {"model_name": model, "prompt": "waves", "negative_prompt": "blur, text", "mode": mode, "duration": "10",
                "external_task_id": f"genbot-{model}-{kind}-{mode}-{sound}-{end}"}
    if kind == "video_text":
        expected["aspect_ratio"] = "9:16"
    else:
        expected["image"] = b64(START)
        if end and mode == "pro":
            expected["image_tail"] = b64(END)
    if model == "kling-v2-6" and mode == "pro":
        expected["sound"] = "on" if sound else "off"
    assert body == expected
    assert kling_stub.stats()["tasks_created"] == 1


def test_kling_model_name_is_the_requests_or_the_setting(kling_stub, settings):
    settings.KLING_MODEL = "kling-v2-5-turbo"
    kling(kling_stub).create_task(GenerationRequest(kind="video_text", prompt="p"))
    assert kling_stub.requests[-1]["body"]["model_name"] == "kling-v2-5-turbo"


def test_a_kling_model_id_the_table_does_not_know_gets_the_basic_fields_only(kling_stub):
    kling(kling_stub).create_task(GenerationRequest(kind="video_image", prompt="p", model="kling-v1-6", mode="pro",
                                                    sound=True, negative_prompt="n", input_image=START, end_image=END))
    assert kling_stub.requests[-1]["body"] == {"model_name": "kling-v1-6", "prompt": "p", "mode": "pro",
                                               "duration": "5", "image": b64(START)}


def post_kling(stub, endpoint: str, body: dict) -> requests.Response:
    token = kling_module.make_token(stub.access_key, stub.secret_key)
    return requests.post(f"{stub.url}/v1/videos/{endpoint}", json=body, headers={"Authorization": f"Bearer {token}"},
                         timeout=5)


T2V = {"model_name": "kling-v2-6", "prompt": "p", "mode": "pro", "duration": "5"}
I2V = {**T2V, "image": b64(START)}


@pytest.mark.parametrize(
    ("endpoint", "body", "message"),
    [
        ("text2video", {**T2V, "resolution": "1080p"}, "unknown field resolution"),
        ("image2video", {**I2V, "aspect_ratio": "16:9"}, "unknown field aspect_ratio"),
        ("text2video", {**T2V, "model_name": "kling-v9"}, "model_name kling-v9 is not supported"),
        ("text2video", {**T2V, "model_name": "kling-v2-1", "sound": "on"}, "sound is not supported by kling-v2-1"),
        ("text2video", {**T2V, "mode": "std", "sound": "on"}, "sound is not supported by kling-v2-6 in std mode"),
        ("text2video", {**T2V, "sound": True}, "sound is not supported"),
        ("image2video", {**I2V, "mode": "std", "image_tail": b64(END)}, "image_tail is not supported by kling-v2-6 in std"),
        ("text2video", {**T2V, "cfg_scale": 0.5}, "cfg_scale is not supported by kling-v2-6"),
        ("text2video", {**T2V, "aspect_ratio": "4:3"}, "aspect_ratio 4:3 is not supported"),
        ("text2video", {**T2V, "duration": 5}, "invalid duration or mode"),
        ("text2video", {**T2V, "negative_prompt": "x" * 2501}, "at most 2500 characters"),
        ("image2video", {**I2V, "image": "data:image/png;base64," + b64(START)}, "without a data: prefix"),
    ],
)
def test_the_kling_stub_refuses_what_kling_refuses_with_code_1201_and_creates_nothing(kling_stub, endpoint, body, message):
    answer = post_kling(kling_stub, endpoint, body)
    assert answer.status_code == 400 and answer.json()["code"] == 1201 and message in answer.json()["message"]
    assert kling_stub.stats()["tasks_created"] == 0


def test_a_refused_create_is_a_final_bad_input_error(kling_stub, monkeypatch):
    monkeypatch.setitem(kling_module.MODELS, "kling-v2-1", kling_module.ModelSpec(sound_modes=("pro",)))
    with pytest.raises(BadInput):
        kling(kling_stub).create_task(GenerationRequest(kind="video_text", prompt="p", model="kling-v2-1", mode="pro"))


def test_the_stub_delivers_a_task_of_the_requested_length(kling_stub):
    result = kling(kling_stub).generate(GenerationRequest(kind="video_text", prompt="p", model="kling-v2-6", duration=10),
                                        ProgressReporter())
    assert result.media[0].mime_type == "video/mp4"
    polled = [r for r in kling_stub.requests if r["method"] == "GET" and r["path"].startswith("/v1/")]
    answer = requests.get(f"{kling_stub.url}{polled[-1]['path']}", timeout=5,
                          headers={"Authorization": f"Bearer {kling_module.make_token(kling_stub.access_key, kling_stub.secret_key)}"})
    assert answer.json()["data"]["task_result"]["videos"][0]["duration"] == "10"


# --- the fake -------------------------------------------------------------------------------


@pytest.mark.parametrize(("ratio", "size", "expected"), [
    ("16:9", "4K", (5504, 3072)), ("16:9", "2K", (2752, 1536)), ("16:9", "", (1376, 768)), ("1:1", "2K", (2048, 2048)),
    ("9:16", "1K", (768, 1376)), ("21:9", "4K", (6336, 2688)), ("", "", (1024, 1024)), ("4:1", "1K", (2048, 512)),
])
def test_the_fake_draws_at_geminis_size_for_the_ratio_and_size(ratio, size, expected):
    picture = FakeProvider(latency=0).generate(GenerationRequest(kind="image", prompt="p", aspect_ratio=ratio, image_size=size),
                                               ProgressReporter()).media[0]
    assert pixels(picture.content) == expected and max(expected) >= {"4K": 4096, "2K": 2048}.get(size, 1024)


def test_the_fake_takes_several_input_pictures():
    inputs = tuple((png(colour=(i * 60, 0, 0)), "image/png") for i in range(3))
    one = FakeProvider(latency=0).generate(GenerationRequest(kind="image_edit", prompt="p", aspect_ratio="1:1",
                                                             input_images=inputs[:1]), ProgressReporter()).media[0]
    three = FakeProvider(latency=0).generate(GenerationRequest(kind="image_edit", prompt="p", aspect_ratio="1:1",
                                                               input_images=inputs), ProgressReporter()).media[0]
    assert pixels(three.content) == (1024, 1024) and one.content != three.content


@pytest.mark.parametrize(("kind", "ratio", "duration", "shape"), [
    ("video_text", "16:9", 10, (640, 360)), ("video_text", "9:16", 5, (360, 640)), ("video_text", "1:1", 5, (640, 640)),
    ("video_image", "16:9", 5, (640, 640)),  # a video from a photo takes the photo's shape
])
def test_the_fake_video_has_the_requested_shape_and_length(kind, ratio, duration, shape):
    request = GenerationRequest(kind=kind, prompt="waves", aspect_ratio=ratio, duration=duration,
                                input_image=START if kind == "video_image" else None,
                                end_image=END if kind == "video_image" else None)
    video = FakeProvider(latency=0).generate(request, ProgressReporter()).media[0]
    assert media.video_info(video.content) == {"width": shape[0], "height": shape[1], "duration": duration}
