"""What the worker reads from a result video: its size and length, or nothing when it cannot."""
from __future__ import annotations

import struct

import pytest

from jobs import media, services
from jobs.models import Job
from standins.providers import STUB_VIDEO
from jobs.providers.base import GenerationRequest, ProgressReporter
from jobs.providers.fake import FakeProvider
from jobs.tasks import run_job


def fake_video(aspect_ratio: str, duration: int) -> bytes:
    request = GenerationRequest(kind="video_text", prompt="waves", aspect_ratio=aspect_ratio, duration=duration)
    item = FakeProvider(latency=0).generate(request, ProgressReporter()).media[0]
    assert item.mime_type == "video/mp4"
    return item.content


def test_a_videos_width_height_and_duration_are_read_from_the_file():
    assert media.video_info(fake_video("16:9", 5)) == {"width": 640, "height": 360, "duration": 5}
    assert media.video_info(fake_video("9:16", 2)) == {"width": 360, "height": 640, "duration": 2}


def test_a_rotated_video_reports_its_displayed_size(monkeypatch):
    def frames(path):
        yield {"size": (1280, 720), "rotate": 90, "duration": 4.6}

    monkeypatch.setattr("imageio_ffmpeg.read_frames", frames)
    assert media.video_info(b"any") == {"width": 720, "height": 1280, "duration": 5}


def quarter_turned(video: bytes) -> bytes:
    """The MP4 with its video track's display matrix turned a quarter (a phone held upright)."""
    at = video.index(b"tkhd") + 4
    matrix = at + (52 if video[at] == 1 else 40)
    return video[:matrix] + struct.pack(">6i", 0, 0x10000, 0, -0x10000, 0, 0) + video[matrix + 24:]


@pytest.mark.parametrize("aspect_ratio, duration", [("16:9", 5), ("9:16", 2), ("1:1", 1)])
def test_an_mp4_is_read_from_its_header_as_ffmpeg_reads_it(aspect_ratio, duration, monkeypatch):
    video = fake_video(aspect_ratio, duration)
    turned = quarter_turned(video)
    by_ffmpeg = media.ffmpeg_info(video), media.ffmpeg_info(turned)
    assert by_ffmpeg[1] == {**by_ffmpeg[0], "width": by_ffmpeg[0]["height"], "height": by_ffmpeg[0]["width"]}
    monkeypatch.setattr("imageio_ffmpeg.read_frames", lambda path: pytest.fail("ffmpeg was started for an MP4"))
    assert (media.video_info(video), media.video_info(turned)) == by_ffmpeg


@pytest.mark.parametrize("content", [STUB_VIDEO, b"", b"not a video at all"])
def test_a_file_that_cannot_be_read_gives_nothing_instead_of_failing(content):
    assert media.video_info(content) == {}


def test_only_videos_are_read(monkeypatch):
    monkeypatch.setattr(media, "video_info", lambda content: pytest.fail("a picture was probed"))
    assert media.media_info(b"png bytes", "image/png") == {}


@pytest.mark.django_db
def test_the_worker_records_what_it_read_on_the_job(funded_customer, no_enqueue):
    video = services.submit_job(customer=funded_customer, kind="video_text", prompt="surf", aspect_ratio="16:9", duration=10)
    picture = services.submit_job(customer=funded_customer, kind="image", prompt="a lighthouse")
    assert run_job(video.pk) == run_job(picture.pk) == "completed"
    assert Job.objects.get(pk=video.pk).result_info == [{"width": 640, "height": 360, "duration": 10}]
    assert Job.objects.get(pk=picture.pk).result_info == [{}]
