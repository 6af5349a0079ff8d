"""What can be ordered: the kinds of job, their options and the limits on them, in one place.

``JobKind`` (the model's choices) names the kinds; what a kind is lives here: whether it makes a
video, whether it works from the customer's picture, which aspect ratios, durations and modes
it takes and what input it accepts. Submitting (``services.submit``), the providers, the queue,
the default prices and the bot read them from here. The names a customer sees for kinds and
modes are texts (``telegram_bot/texts.py``).
"""
from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from .exceptions import InvalidJobOption
from .models import JobKind

# The aspect ratios the real providers take: Gemini's ``imageConfig.aspectRatio`` for pictures,
# Kling's ``aspect_ratio`` for videos (a video from a photo takes the photo's).
IMAGE_ASPECT_RATIOS = frozenset({"1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"})
VIDEO_ASPECT_RATIOS = frozenset({"16:9", "9:16", "1:1"})
# A video's length in seconds and its quality (Kling's ``duration`` and ``mode``); the first of
# each is what a video gets when the customer chose none.
VIDEO_DURATIONS = (5, 10)
VIDEO_MODES = ("std", "pro")
# The pictures a customer may send: Pillow's format name -> MIME type.
INPUT_IMAGE_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


@dataclass(frozen=True)
class KindSpec:
    video: bool
    # The job works from a picture the customer sends (and needs one).
    input_image: bool

    @property
    def aspect_ratios(self) -> frozenset[str]:
        return VIDEO_ASPECT_RATIOS if self.video else IMAGE_ASPECT_RATIOS


KINDS: dict[str, KindSpec] = {
    JobKind.IMAGE: KindSpec(video=False, input_image=False),
    JobKind.IMAGE_EDIT: KindSpec(video=False, input_image=True),
    JobKind.VIDEO_TEXT: KindSpec(video=True, input_image=False),
    JobKind.VIDEO_IMAGE: KindSpec(video=True, input_image=True),
}
VIDEO_KINDS = tuple(kind for kind, spec in KINDS.items() if spec.video)


def kind_spec(kind: str) -> KindSpec:
    """What the kind is; ``InvalidJobOption`` for a kind that does not exist."""
    try:
        return KINDS[kind]
    except KeyError:
        raise InvalidJobOption() from None


def is_video(kind: str) -> bool:
    return kind in VIDEO_KINDS


@dataclass(frozen=True)
class InputLimits:
    prompt_chars: int
    image_bytes: int
    image_pixels: int
    image_min_side: int


def input_limits(kind: str) -> InputLimits:
    """What a request of this kind may send (from settings, so a deployment can tune them).

    A video is made from a larger picture than a picture edit needs.
    """
    return InputLimits(
        prompt_chars=settings.JOB_MAX_PROMPT_LENGTH,
        image_bytes=settings.JOB_MAX_INPUT_BYTES,
        image_pixels=settings.JOB_MAX_INPUT_PIXELS,
        image_min_side=settings.JOB_MIN_VIDEO_IMAGE_SIDE if kind_spec(kind).video else 1,
    )


def check_options(*, kind: str, aspect_ratio: str = "", duration: int | None = None, mode: str | None = None) -> dict:
    """The options a job of this kind gets (what ``Job.options`` holds), defaults filled in.

    Raises ``InvalidJobOption`` for an unknown kind, an option the kind does not take or a value
    it does not offer.
    """
    spec = kind_spec(kind)
    options: dict = {}
    if aspect_ratio:
        if aspect_ratio not in spec.aspect_ratios:
            raise InvalidJobOption()
        options["aspect_ratio"] = aspect_ratio
    if spec.video:
        duration = duration or VIDEO_DURATIONS[0]
        mode = mode or VIDEO_MODES[0]
        if duration not in VIDEO_DURATIONS or mode not in VIDEO_MODES:
            raise InvalidJobOption()
        options.update(duration=duration, mode=mode)
    elif duration or mode:
        raise InvalidJobOption()
    return options
