"""A photo album gathered into one order: Telegram sends each of its photos as an update of its
own (the same ``media_group_id``), within a moment of each other.

Each photo is kept (``services.add_album_photo``) and a check is set for ``BOT_ALBUM_DEBOUNCE``
seconds later; the check that finds no photo newer than that takes the album
(``services.take_album``, one winner) and quotes it once, as one multi-picture edit. Photos of
one album may reach different processes (webhook workers): the rows are in the database and
each process's check may win, so the album is quoted once wherever its photos landed.
"""
from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.db import connections
from django.utils import translation

from telegram_bot.services import add_album_photo, take_album

logger = logging.getLogger(__name__)


def photo_arrived(handlers, message, customer, *, file_id: str, caption: str) -> None:
    """Keep this photo of its album and check for the whole album when the album has gone quiet."""
    chat_id, group = message.chat.id, str(message.media_group_id)
    add_album_photo(chat_id=chat_id, media_group_id=group, message_id=message.message_id, file_id=file_id,
                    caption=caption)
    timer = threading.Timer(settings.BOT_ALBUM_DEBOUNCE, album_quiet, (handlers, chat_id, group, customer))
    timer.daemon = True
    timer.start()


def album_quiet(handlers, chat_id: int, group: str, customer) -> bool:
    """Quote the album if no photo of it came meanwhile (else a later check will); True if quoted."""
    try:
        photos = take_album(chat_id=chat_id, media_group_id=group, quiet_for=settings.BOT_ALBUM_DEBOUNCE)
        if not photos:
            return False
        caption = next((photo.caption for photo in photos if photo.caption), "")
        with translation.override(customer.language):
            handlers._photos(chat_id, customer, [photo.file_id for photo in photos], caption)
        return True
    except Exception:  # noqa: BLE001 - a timer thread: nobody else would see it
        logger.exception("chat %s: album %s could not be quoted", chat_id, group)
        return False
    finally:
        if threading.current_thread() is not threading.main_thread():
            connections.close_all()
