"""The photo of a picture result: the file itself when Telegram takes it as a photo, else a JPEG
preview of at most 2560 px (the original goes as a document, untouched)."""
from __future__ import annotations

import io

from PIL import Image

from telegram_bot.previews import PREVIEW_SIDE, photo_upload


def _png(width: int, height: int) -> io.BytesIO:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 200)).save(buffer, "PNG")
    buffer.seek(0)
    return buffer


def test_a_picture_telegram_takes_as_a_photo_is_uploaded_as_it_is():
    original = _png(1024, 1024)
    name, handle, mime = photo_upload("result.png", original, "image/png")
    assert (name, handle, mime) == ("result.png", original, "image/png")
    assert handle.read() == _png(1024, 1024).read()


def test_a_picture_too_large_for_a_photo_goes_as_a_smaller_jpeg_preview():
    name, handle, mime = photo_upload("result.png", _png(6000, 4500), "image/png")  # sides add up past 10000
    with Image.open(handle) as preview:
        assert (name, mime, preview.format) == ("result.jpg", "image/jpeg", "JPEG")
        assert max(preview.size) == PREVIEW_SIDE and preview.size[0] * 4500 == preview.size[1] * 6000
