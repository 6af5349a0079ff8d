"""A provider that makes real media locally, so the whole product runs with no key and no network.

Pictures are PNGs drawn from the prompt with Pillow at the size Gemini would make: the requested
aspect ratio at 1K, 2K or 4K (``PICTURE_SIZES``: Google's table for its Gemini 3 image models; a
4K 16:9 picture is 5504 x 3072), the first input picture as the background and the others as
thumbnails. Videos are real MP4s encoded by imageio's bundled ffmpeg (a GIF animation when
ffmpeg cannot run) of the requested length, in the requested shape (a video from a photo takes
the photo's), its last frame drawn on the end frame when there is one. ``FAKE_PROVIDER_LATENCY``
seconds pass per generation (reported as progress, cancel noticed at each step; 0 skips the
wait) and ``FAKE_PROVIDER_FAILURE_RATE`` of generations fail with a retryable error.
"""
from __future__ import annotations

import hashlib
import io
import logging
import random
import textwrap
import time

from django.conf import settings
from PIL import Image, ImageDraw, ImageFont

from .. import catalog
from .base import (
    BaseAIProvider,
    GeneratedMedia,
    GenerationRequest,
    GenerationResult,
    ProgressReporter,
    ProviderUnavailable,
)
from .gemini import input_images

logger = logging.getLogger(__name__)

# The 1K size of each aspect ratio (Google's table for gemini-3-pro-image-preview); 2K and 4K
# are two and four times as wide and high.
PICTURE_SIZES = {
    "1:1": (1024, 1024), "2:3": (848, 1264), "3:2": (1264, 848), "3:4": (896, 1200), "4:3": (1200, 896),
    "4:5": (928, 1152), "5:4": (1152, 928), "9:16": (768, 1376), "16:9": (1376, 768), "21:9": (1584, 672),
}
SCALES = {"1K": 1, "2K": 2, "4K": 4}
# Videos stay small (the shape is what matters here): this long side, this many frames a second.
VIDEO_LONG_SIDE = 640
VIDEO_FPS = 4


def ratio_of(aspect_ratio: str) -> float | None:
    width, _sep, height = aspect_ratio.partition(":")
    try:
        return float(width) / float(height)
    except (ValueError, ZeroDivisionError):
        return None


def picture_size(aspect_ratio: str, image_size: str = "") -> tuple[int, int]:
    """The pixels of a picture at this ratio and size; a ratio off the table keeps about 1 MP."""
    scale = SCALES.get(image_size, 1)
    if aspect_ratio in PICTURE_SIZES:
        width, height = PICTURE_SIZES[aspect_ratio]
    else:
        ratio = ratio_of(aspect_ratio) or 1.0
        width, height = round((2**20 * ratio) ** 0.5 / 16) * 16, round((2**20 / ratio) ** 0.5 / 16) * 16
    return width * scale, height * scale


def video_size(ratio: float) -> tuple[int, int]:
    """The long side ``VIDEO_LONG_SIDE``, the other one even (as H.264 wants) at ``ratio``."""
    if ratio >= 1:
        return VIDEO_LONG_SIDE, max(2, round(VIDEO_LONG_SIDE / ratio / 2) * 2)
    return max(2, round(VIDEO_LONG_SIDE * ratio / 2) * 2), VIDEO_LONG_SIDE


def _colour(prompt: str) -> tuple[int, int, int]:
    digest = hashlib.sha256(prompt.encode()).digest()
    return digest[0], digest[1], digest[2]


def draw_picture(prompt: str, size: tuple[int, int] = (512, 512), *, shift: int = 0,
                 base: Image.Image | None = None, others: tuple[Image.Image, ...] = ()) -> Image.Image:
    """A picture that visibly depends on the prompt: its colour, its text, a moving disc; on
    ``base`` when given, with ``others`` as thumbnails along the bottom."""
    width, height = size
    if base is not None or others:
        image = base.convert("RGB").resize(size) if base is not None else Image.new("RGB", size, _colour(prompt))
        white, black = (255, 255, 255), (0, 0, 0)
    else:
        # A three-colour palette picture: encodes several times faster than RGB.
        image = Image.new("P", size, 0)
        image.putpalette([*_colour(prompt), 255, 255, 255, 0, 0, 0])
        white, black = 1, 2
    draw = ImageDraw.Draw(image)
    radius = min(width, height) // 6
    cx = (width // 4 + shift * 7) % width
    cy = height // 2
    draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=white)
    # The text grows with the picture, so a 4K one is as legible as a 1K one.
    font_size = max(10, min(width, height) // 40)
    font = ImageFont.load_default(size=font_size)
    y = font_size
    for line in textwrap.wrap(prompt, width=max(10, width // font_size))[:8]:
        draw.text((font_size, y), line, fill=black, font=font)
        y += font_size * 3 // 2
    thumb = max(16, min(width, height) // 5)
    for index, other in enumerate(others):
        image.paste(other.convert("RGB").resize((thumb, thumb)), (index * (thumb + 4) % max(1, width - thumb), height - thumb))
    return image


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def video_bytes(frames: list[Image.Image]) -> GeneratedMedia:
    """An MP4 through imageio-ffmpeg; a GIF when that fails (no binary, exotic platform)."""
    try:
        import imageio.v3 as iio
        import numpy as np

        data = iio.imwrite(
            "<bytes>", np.stack([np.asarray(frame) for frame in frames]), extension=".mp4",
            plugin="FFMPEG", fps=VIDEO_FPS, codec="libx264", macro_block_size=8,
        )
        return GeneratedMedia(content=data, mime_type="video/mp4")
    except Exception:  # noqa: BLE001 - any encoder trouble falls back to a GIF
        logger.warning("fake provider: MP4 encoding failed, making a GIF", exc_info=True)
        buffer = io.BytesIO()
        frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:],
                       duration=int(1000 / VIDEO_FPS), loop=0)
        return GeneratedMedia(content=buffer.getvalue(), mime_type="image/gif")


class FakeProvider(BaseAIProvider):
    name = "fake"

    def __init__(self, *, latency: float | None = None, failure_rate: float | None = None):
        self.latency = settings.FAKE_PROVIDER_LATENCY if latency is None else latency
        self.failure_rate = settings.FAKE_PROVIDER_FAILURE_RATE if failure_rate is None else failure_rate

    def _wait(self, reporter: ProgressReporter) -> None:
        if self.latency <= 0:
            return
        steps = max(1, min(20, int(self.latency / 0.25)))
        for step in range(1, steps + 1):
            time.sleep(self.latency / steps)
            reporter.report(int(90 * step / steps))

    def generate(self, request: GenerationRequest, reporter: ProgressReporter) -> GenerationResult:
        self._wait(reporter)
        if self.failure_rate > 0 and random.random() < self.failure_rate:
            raise ProviderUnavailable("fake provider: simulated failure")
        inputs = [Image.open(io.BytesIO(content)) for content, _mime in input_images(request)]
        base, others = (inputs[0], tuple(inputs[1:])) if inputs else (None, ())
        if catalog.is_video(request.kind):
            return GenerationResult(media=[self.video(request, base)])
        size = picture_size(request.aspect_ratio or "1:1", request.image_size)
        picture = draw_picture(request.prompt, size, base=base, others=others)
        return GenerationResult(media=[GeneratedMedia(png_bytes(picture), "image/png")])

    @staticmethod
    def video(request: GenerationRequest, base: Image.Image | None) -> GeneratedMedia:
        """``request.duration`` seconds in the shape asked for (a photo's own when it starts from one)."""
        if base is not None:
            ratio = base.width / base.height
        else:
            ratio = ratio_of(request.aspect_ratio or "16:9") or 16 / 9
        size = video_size(ratio)
        start = base.convert("RGB").resize(size) if base is not None else None
        end = Image.open(io.BytesIO(request.end_image)).convert("RGB").resize(size) if request.end_image else start
        count = VIDEO_FPS * max(1, request.duration)
        frames = [draw_picture(request.prompt, size, shift=i, base=end if i == count - 1 else start).convert("RGB")
                  for i in range(count)]
        return video_bytes(frames)
