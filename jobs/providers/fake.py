"""A provider that makes real media locally, so the whole product runs with no key and no network.

Pictures are PNGs drawn from the prompt with Pillow; videos are short real MP4s encoded by
imageio's bundled ffmpeg (a GIF animation when ffmpeg cannot run). ``FAKE_PROVIDER_LATENCY``
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
from PIL import Image, ImageDraw

from .. import catalog
from .base import (
    BaseAIProvider,
    GeneratedMedia,
    GenerationRequest,
    GenerationResult,
    ProgressReporter,
    ProviderUnavailable,
)

logger = logging.getLogger(__name__)

SIZES = {"1:1": (512, 512), "16:9": (640, 360), "9:16": (360, 640), "4:3": (512, 384), "3:4": (384, 512)}
VIDEO_FPS = 8


def _colour(prompt: str) -> tuple[int, int, int]:
    digest = hashlib.sha256(prompt.encode()).digest()
    return digest[0], digest[1], digest[2]


def draw_picture(prompt: str, size: tuple[int, int] = (512, 512), *, shift: int = 0,
                 base: Image.Image | None = None) -> Image.Image:
    """A picture that visibly depends on the prompt: its colour, its text, a moving disc."""
    width, height = size
    if base is not None:
        image = base.convert("RGB").resize(size)
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
    y = 10
    for line in textwrap.wrap(prompt, width=max(10, width // 8))[:8]:
        draw.text((10, y), line, fill=black)
        y += 14
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
        size = SIZES.get(request.aspect_ratio, SIZES["1:1"])
        base = None
        if request.input_image:
            base = Image.open(io.BytesIO(request.input_image))
        if catalog.is_video(request.kind):
            size = SIZES.get(request.aspect_ratio, SIZES["16:9"])
            # Keep the fake video small: a second of frames per requested second, at most 3 s.
            count = VIDEO_FPS * min(3, max(1, request.duration))
            frames = [draw_picture(request.prompt, size, shift=i, base=base).convert("RGB") for i in range(count)]
            return GenerationResult(media=[video_bytes(frames)])
        return GenerationResult(media=[GeneratedMedia(png_bytes(draw_picture(request.prompt, size, base=base)), "image/png")])
