"""What the worker reads from a result file before announcing it: a video's size and length.

Telegram shows a video with the width, height and duration the bot sends along; without them
it guesses (a square, a wrong length). They are read once, in the worker, from the file itself
by imageio-ffmpeg's bundled ffmpeg, and stored on the job (``Job.result_info``).
"""
from __future__ import annotations

import logging
import os
import tempfile

logger = logging.getLogger(__name__)


def video_info(content: bytes) -> dict:
    """``{"width", "height", "duration"}`` (pixels as displayed, whole seconds) of a video.

    ``{}`` when the file cannot be read (no ffmpeg, not a video, a broken file): the video is
    then sent without them, never not at all.
    """
    try:
        import imageio_ffmpeg

        # ffmpeg reads a path; the file lives only while the header is read.
        handle, path = tempfile.mkstemp(suffix=".mp4")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(content)
            frames = imageio_ffmpeg.read_frames(path)
            try:
                meta = next(frames)
            finally:
                frames.close()
        finally:
            os.unlink(path)
        width, height = (int(side) for side in meta["size"])
        if int(meta.get("rotate") or 0) % 180:
            width, height = height, width
        duration = float(meta.get("duration") or 0)
    except Exception:  # noqa: BLE001 - any trouble reading it only loses the hints
        logger.warning("could not read the video's size and duration", exc_info=True)
        return {}
    if width <= 0 or height <= 0:
        return {}
    info = {"width": width, "height": height}
    if duration > 0:
        info["duration"] = max(1, round(duration))
    return info


def media_info(content: bytes, mime_type: str) -> dict:
    """What the bot needs to send one result file well: a video's ``video_info``, else ``{}``."""
    return video_info(content) if mime_type.startswith("video/") else {}
