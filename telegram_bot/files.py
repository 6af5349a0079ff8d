"""Files the customer sent, fetched from the Bot API: ``getFile``, then a capped, timed download.

telebot's ``download_file`` has neither a time-out nor a size limit: a stalled Bot API server
would hold a handler thread for good and a lying one could fill the memory. Here the download
stops at Telegram's 20 MB (bots cannot get larger files) or a smaller cap, and must be done
``TELEGRAM_FILE_TIMEOUT`` seconds after the call began (the ``getFile`` call before it has
telebot's own connect and read time-outs).
"""
from __future__ import annotations

import time

import requests
from django.conf import settings
from telebot import apihelper

from genbot.streaming import BodyTooLarge, StreamError, read_body, time_left

# getFile serves bots files of at most 20 MB (https://core.telegram.org/bots/api#getfile).
TELEGRAM_DOWNLOAD_LIMIT = 20 * 1024 * 1024
DEFAULT_FILE_URL = "https://api.telegram.org/file/bot{0}/{1}"


class FileDownloadError(Exception):
    """The customer's file could not be fetched; the handler tells them to send it again."""


class FileTooLarge(FileDownloadError):
    def __init__(self, limit: int):
        self.limit = limit
        super().__init__(f"file larger than {limit} bytes")


def download_telegram_file(bot, file_id: str, *, max_bytes: int = TELEGRAM_DOWNLOAD_LIMIT,
                           timeout: float | None = None) -> bytes:
    """The content of the file ``file_id``: at most ``max_bytes`` (and 20 MB), within ``timeout``.

    Raises ``FileTooLarge`` (getFile's ``file_size``, Telegram's "file is too big", or the body
    passing the cap, whichever comes first: a large file is never read to its end) or
    ``FileDownloadError`` (the Bot API failed, stalled or took too long).
    """
    limit = min(max_bytes, TELEGRAM_DOWNLOAD_LIMIT)
    timeout = settings.TELEGRAM_FILE_TIMEOUT if timeout is None else timeout
    ends = time.monotonic() + timeout
    try:
        info = bot.get_file(file_id)
    except apihelper.ApiTelegramException as exc:
        if "too big" in (exc.description or "").lower():
            raise FileTooLarge(limit) from exc
        raise FileDownloadError(f"getFile: {exc.description}") from exc
    except (apihelper.ApiException, requests.RequestException) as exc:
        raise FileDownloadError(f"getFile failed: {type(exc).__name__}") from None
    if (info.file_size or 0) > limit:
        raise FileTooLarge(limit)
    if not info.file_path:
        raise FileDownloadError("getFile gave no file_path")
    # The URL holds the bot token: it is never put in an error or a log line.
    url = (apihelper.FILE_URL or DEFAULT_FILE_URL).format(bot.token, info.file_path)
    try:
        wait = min(timeout, time_left(ends))
        with requests.get(url, stream=True, timeout=(wait, wait), proxies=apihelper.proxy) as response:
            if response.status_code != 200:
                raise FileDownloadError(f"file download answered {response.status_code}")
            return read_body(response, max_bytes=limit, ends=ends, timeout=timeout)
    except BodyTooLarge as exc:
        raise FileTooLarge(limit) from exc
    except StreamError as exc:
        raise FileDownloadError(f"file download: {exc}") from exc
    except requests.RequestException as exc:
        raise FileDownloadError(f"file download failed: {type(exc).__name__}") from None
