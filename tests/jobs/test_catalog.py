"""The catalogue: one place says what each kind is and takes; submit, the providers and the queue agree."""
from __future__ import annotations

import pytest

from jobs import catalog, queueing
from jobs.exceptions import InvalidJobOption
from jobs.models import JobKind
from jobs.providers.base import GenerationRequest
from jobs.providers.gemini import GeminiImageProvider
from jobs.providers.kling import KlingVideoProvider


def test_every_kind_of_the_model_is_in_the_catalogue():
    assert set(catalog.KINDS) == set(JobKind.values)
    assert set(catalog.VIDEO_KINDS) == {JobKind.VIDEO_TEXT, JobKind.VIDEO_IMAGE}
    assert [kind for kind, spec in catalog.KINDS.items() if spec.input_image] == [JobKind.IMAGE_EDIT, JobKind.VIDEO_IMAGE]


def test_a_video_gets_the_first_duration_and_mode_when_none_was_chosen():
    assert catalog.check_options(kind="video_text") == {"duration": 5, "mode": "std"}
    assert catalog.check_options(kind="video_image", aspect_ratio="9:16", duration=10, mode="pro") == {
        "aspect_ratio": "9:16", "duration": 10, "mode": "pro",
    }
    assert catalog.check_options(kind="image", aspect_ratio="21:9") == {"aspect_ratio": "21:9"}


@pytest.mark.parametrize("kind, options", [
    ("image", {"duration": 5}),            # a picture has no length
    ("image_edit", {"mode": "pro"}),       # nor a quality
    ("video_text", {"aspect_ratio": "21:9"}),  # Kling makes no 21:9 video
    ("video_text", {"duration": 7}),
    ("video_text", {"mode": "ultra"}),
    ("sound", {}),
])
def test_an_option_the_kind_does_not_offer_is_refused(kind, options):
    with pytest.raises(InvalidJobOption):
        catalog.check_options(kind=kind, **options)


def test_a_video_from_a_photo_needs_a_larger_picture_than_an_edit(settings):
    settings.JOB_MIN_VIDEO_IMAGE_SIDE = 300
    assert catalog.input_limits("video_image").image_min_side == 300
    assert catalog.input_limits("image_edit").image_min_side == 1


def test_the_providers_send_what_the_catalogue_offers():
    kling = KlingVideoProvider(api_key="a:s", api_url="https://kling.invalid")
    for duration in catalog.VIDEO_DURATIONS:
        for mode in catalog.VIDEO_MODES:
            body = kling.build_body(GenerationRequest(kind="video_text", prompt="p", duration=duration, mode=mode))
            assert (body["duration"], body["mode"]) == (str(duration), mode)
    for ratio in catalog.VIDEO_ASPECT_RATIOS:
        assert kling.build_body(GenerationRequest(kind="video_text", prompt="p", aspect_ratio=ratio))["aspect_ratio"] == ratio
    gemini = GeminiImageProvider(api_key="k", api_url="https://gemini.invalid")
    for ratio in catalog.IMAGE_ASPECT_RATIOS:
        body = gemini.build_body(GenerationRequest(kind="image", prompt="p", aspect_ratio=ratio))
        assert body["generationConfig"]["imageConfig"] == {"aspectRatio": ratio}


def test_videos_go_to_the_videos_queue():
    assert {kind: queueing.queue_name_for(kind) for kind in catalog.KINDS} == {
        "image": "images", "image_edit": "images", "video_text": "videos", "video_image": "videos",
    }
