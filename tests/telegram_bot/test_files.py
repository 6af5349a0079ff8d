"""Downloading the file a customer sent: getFile, then a download with a deadline and a size cap."""
from __future__ import annotations

import time

import pytest
import telebot
from telebot import apihelper, types

from standins.providers import StreamedBody, StubServer
from telegram_bot.bot import configure_api
from telegram_bot.files import TELEGRAM_DOWNLOAD_LIMIT, FileDownloadError, FileTooLarge, download_telegram_file


class FileServer(StubServer):
    """Serves ``/file/bot<token>/<path>`` the way a test scripts it."""

    def __init__(self, answer):
        super().__init__()
        self.answer = answer

    def handle(self, method, path, headers, body):
        return self.answer()


class FakeBot:
    """telebot's ``get_file`` answered from a dict, without an API call."""

    token = "123:test"

    def __init__(self, **file):
        self.file = file

    def get_file(self, file_id):
        if isinstance(self.file.get("raise"), Exception):
            raise self.file["raise"]
        return types.File(file_id=file_id, file_unique_id=file_id, file_size=self.file.get("file_size"),
                          file_path=self.file.get("file_path", f"photos/{file_id}.jpg"))


@pytest.fixture(autouse=True)
def telebot_urls():
    """``configure_api`` sets telebot's module-wide URLs: put them back after the test."""
    saved = apihelper.API_URL, apihelper.FILE_URL
    yield
    apihelper.API_URL, apihelper.FILE_URL = saved


@pytest.fixture
def file_server(settings):
    servers = []

    def start(answer):
        server = FileServer(answer).start()
        servers.append(server)
        settings.TELEGRAM_API_URL = server.url
        configure_api()
        return server

    yield start
    for server in servers:
        server.stop()


def test_the_file_is_downloaded_through_the_bot_api(sandbox):
    configure_api()
    file_id = sandbox.state.store_file(b"picture bytes", "image/png", "photo.png")
    assert download_telegram_file(telebot.TeleBot("123:abc", validate_token=False), file_id) == b"picture bytes"


def test_a_file_getfile_says_is_over_the_cap_is_refused_without_downloading(file_server):
    server = file_server(lambda: (200, b"x", "image/jpeg", 0))
    with pytest.raises(FileTooLarge) as refused:
        download_telegram_file(FakeBot(file_size=TELEGRAM_DOWNLOAD_LIMIT + 1), "big", max_bytes=10**9)
    assert refused.value.limit == TELEGRAM_DOWNLOAD_LIMIT  # Telegram's 20 MB, whatever the caller allows
    with pytest.raises(FileTooLarge) as refused:
        download_telegram_file(FakeBot(file_size=5000), "big", max_bytes=4000)
    assert refused.value.limit == 4000
    assert server.requests == []


def test_telegrams_file_is_too_big_answer_is_the_too_large_error():
    too_big = apihelper.ApiTelegramException("getFile", None, {"error_code": 400, "description": "Bad Request: file is too big"})
    with pytest.raises(FileTooLarge):
        download_telegram_file(FakeBot(**{"raise": too_big}), "big")
    gone = apihelper.ApiTelegramException("getFile", None, {"error_code": 400, "description": "Bad Request: invalid file_id"})
    with pytest.raises(FileDownloadError) as failed:
        download_telegram_file(FakeBot(**{"raise": gone}), "gone")
    assert not isinstance(failed.value, FileTooLarge)


def test_a_body_over_the_cap_stops_the_download_without_reading_it_all(file_server):
    # getFile gives no size; the body runs past the cap and then the server would go on for
    # half a minute: only stopping at the cap ends this quickly.
    file_server(lambda: (200, StreamedBody((b"x" * 3000, b"y" * 3000), pause=30, sized=False), "image/jpeg", 0))
    started = time.monotonic()
    with pytest.raises(FileTooLarge):
        download_telegram_file(FakeBot(), "unsized", max_bytes=2000, timeout=20)
    assert time.monotonic() - started < 5


def test_a_download_that_hangs_fails_at_the_timeout(file_server):
    file_server(lambda: (200, b"late", "image/jpeg", 10))
    started = time.monotonic()
    with pytest.raises(FileDownloadError):
        download_telegram_file(FakeBot(), "slow", timeout=0.5)
    assert time.monotonic() - started < 3


def test_a_file_dripped_slower_than_the_deadline_fails_at_the_deadline(file_server):
    file_server(lambda: (200, StreamedBody(tuple(b"%d" % i for i in range(10)), pause=0.3), "image/jpeg", 0))
    started = time.monotonic()
    with pytest.raises(FileDownloadError):
        download_telegram_file(FakeBot(), "drip", timeout=1.0)
    assert time.monotonic() - started < 2


def test_an_error_answer_and_no_server_are_download_errors(file_server, settings):
    file_server(lambda: (404, b"not found", "text/plain", 0))
    with pytest.raises(FileDownloadError):
        download_telegram_file(FakeBot(), "missing")
    settings.TELEGRAM_API_URL = "http://127.0.0.1:9"  # discard port: nothing listens
    configure_api()
    with pytest.raises(FileDownloadError) as failed:
        download_telegram_file(FakeBot(), "nowhere", timeout=2)
    assert "123:test" not in str(failed.value)  # the token in the URL is never in the error
