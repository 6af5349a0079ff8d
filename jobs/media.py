"""What the worker reads from a result file before announcing it: a video's size and length.

Telegram shows a video with the width, height and duration the bot sends along; without them
it guesses (a square, a wrong length). They are read once, in the worker, from the file itself,
and stored on the job (``Job.result_info``): from an MP4's header boxes in Python (Kling's
videos), else by imageio-ffmpeg's bundled ffmpeg. Reading a header costs microseconds; an
ffmpeg process costs some 40 ms of CPU per video, which at a few hundred videos finishing
together is seconds of every worker's time.
"""
from __future__ import annotations

import logging
import os
import struct
import tempfile

logger = logging.getLogger(__name__)


# Boxes that hold the ones read here: movie, track, media.
CONTAINERS = {b"moov", b"trak", b"mdia"}


def _boxes(data: bytes, start: int, end: int):
    """(type, body start, body end) of each ISO BMFF box between ``start`` and ``end``."""
    while start + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, start)
        header = 8
        if size == 1:
            if start + 16 > end:
                return
            size, header = struct.unpack_from(">Q", data, start + 8)[0], 16
        elif size == 0:
            size = end - start
        if size < header or start + size > end:
            return
        yield kind, start + header, start + size
        start += size


def mp4_info(content: bytes) -> dict | None:
    """``video_info`` read from an MP4's header (mvhd, and tkhd of the video track); None when
    the file is no MP4 with a readable video track (``video_info`` then asks ffmpeg)."""
    duration, tracks = None, []
    pending = [box for box in _boxes(content, 0, len(content)) if box[0] == b"moov"]
    try:
        while pending:
            kind, start, end = pending.pop(0)
            if kind == b"mvhd":
                long = content[start] == 1
                timescale, length = struct.unpack_from(">IQ" if long else ">II", content, start + (20 if long else 12))
                duration = length / timescale if timescale else None
            elif kind == b"trak":
                tracks.append({})
            elif kind == b"tkhd" and tracks:
                matrix_at = start + (52 if content[start] == 1 else 40)
                a, b = struct.unpack_from(">ii", content, matrix_at)
                width, height = struct.unpack_from(">II", content, matrix_at + 36)
                turned = a == 0 and abs(b) == 0x10000  # a quarter turn: shown the other way up
                tracks[-1]["size"] = (height >> 16, width >> 16) if turned else (width >> 16, height >> 16)
            elif kind == b"hdlr" and tracks:
                tracks[-1]["video"] = content[start + 8:start + 12] == b"vide"
            if kind in CONTAINERS:
                pending[:0] = list(_boxes(content, start, end))
    except (struct.error, IndexError):
        return None
    size = next((track["size"] for track in tracks if track.get("video") and "size" in track), None)
    if size is None or duration is None:
        return None
    return _info(*size, duration) or None


def ffmpeg_info(content: bytes) -> dict:
    """``video_info`` as imageio-ffmpeg's bundled ffmpeg reads it (any format it knows)."""
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
    return _info(width, height, duration)


def _info(width: int, height: int, duration: float) -> dict:
    if width <= 0 or height <= 0:
        return {}
    info = {"width": width, "height": height}
    if duration > 0:
        info["duration"] = max(1, round(duration))
    return info


def video_info(content: bytes) -> dict:
    """``{"width", "height", "duration"}`` (pixels as displayed, whole seconds) of a video.

    ``{}`` when the file cannot be read (no ffmpeg, not a video, a broken file): the video is
    then sent without them, never not at all.
    """
    return mp4_info(content) or ffmpeg_info(content)


def media_info(content: bytes, mime_type: str) -> dict:
    """What the bot needs to send one result file well: a video's ``video_info``, else ``{}``."""
    return video_info(content) if mime_type.startswith("video/") else {}
