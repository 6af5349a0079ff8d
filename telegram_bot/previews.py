"""The photo Telegram takes for a picture result: the file itself, or a smaller JPEG of it.

A bot's photo may weigh 10 MB and its width and height add up to 10000 at most
(https://core.telegram.org/bots/api#sendphoto); a 4K PNG passes the first easily. Telegram
shows photos at 2560 px at most anyway, so a picture over a limit is uploaded as a JPEG of that
size, made in memory at the moment of sending; the original goes as a document, untouched.
"""
from __future__ import annotations

import io

from PIL import Image, UnidentifiedImageError

PHOTO_LIMIT = 10 * 1024 * 1024
PHOTO_MAX_SIDES = 10_000
PREVIEW_SIDE = 2560


def photo_upload(name: str, handle, mime: str):
    """(name, file, mime) to upload as the photo: ``handle`` itself when Telegram takes it."""
    size = getattr(handle, "size", None)
    try:
        handle.seek(0)
        with Image.open(handle) as image:
            too_big = (size or 0) > PHOTO_LIMIT or sum(image.size) > PHOTO_MAX_SIDES
            if not too_big:
                handle.seek(0)
                return name, handle, mime
            image.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
            preview = io.BytesIO()
            image.convert("RGB").save(preview, "JPEG", quality=90)
    except (UnidentifiedImageError, OSError, ValueError):
        handle.seek(0)
        return name, handle, mime
    handle.close()
    preview.seek(0)
    return name.rsplit(".", 1)[0] + ".jpg", preview, "image/jpeg"
