"""Callback data of every inline button: built and parsed here, nowhere else.

Telegram gives a button at most 64 bytes of ``callback_data`` and hands back whatever string a
client sends, so a press is untrusted input. Each button is a small frozen dataclass whose
``data`` is its wire form (``<prefix>:<fields>``); ``parse`` turns a string back into one of
them, or into ``Expired`` when it is unknown, garbled, or from a format the bot no longer uses
(e.g. the old ``c:ok``), so a handler never splits strings and never trusts a field it did not
check. ``build`` refuses data over the limit at the moment a keyboard is made, not when
Telegram rejects the message.

Wire forms: ``m:<menu item>``, ``t:<kopecks>|custom``, ``p:<yk|st>:<kopecks>``,
``v:d:<seconds>``, ``v:a:<w:h>``, ``v:m:<mode>``, ``c:<quote>:<kopecks>`` (confirm a quote),
``c:no`` (drop the dialogue), ``x:<job id>``, ``l:<language>``, ``h:<history page>``.
"""
from __future__ import annotations

import re
from dataclasses import astuple, dataclass
from typing import ClassVar

MAX_BYTES = 64
MENU_ITEMS = ("picture", "edit", "video", "topup", "balance", "jobs", "history", "lang", "help")
PAY_METHODS = ("yk", "st")
LANGUAGES = ("ru", "en")
# /history keeps pages within reach (``telegram_bot.selectors``): a page number is at most this.
MAX_HISTORY_PAGE = 9999
# A quote id is a short random token (see ``telegram_bot.quotes``): URL-safe base64, no ":".
QUOTE_ID = re.compile(r"[A-Za-z0-9_-]{4,16}")
ASPECT_RATIO = re.compile(r"\d{1,2}:\d{1,2}")
WORD = re.compile(r"[a-z]{1,16}")
# Kopecks and ids: digits only, no sign, no leading zero, and short enough to be sane.
NUMBER = re.compile(r"0|[1-9]\d{0,11}")


class Callback:
    """A button's meaning; ``data`` is what goes into ``callback_data``: the class's ``prefix``
    and the fields, in order, joined by ":"."""

    prefix: ClassVar[str] = ""

    @property
    def data(self) -> str:
        return ":".join([self.prefix, *(str(value) for value in astuple(self))])


@dataclass(frozen=True)
class Expired(Callback):
    """Anything the bot cannot (or no longer) act on: answered with the "offer expired" text."""

    raw: str = ""

    @property
    def data(self) -> str:
        return self.raw


@dataclass(frozen=True)
class Menu(Callback):
    prefix = "m"
    item: str


@dataclass(frozen=True)
class TopupAmount(Callback):
    """A top-up amount in kopecks; ``None`` asks the customer to type one."""

    prefix = "t"
    amount: int | None

    @property
    def data(self) -> str:
        return f"t:{self.amount}" if self.amount is not None else "t:custom"


@dataclass(frozen=True)
class Pay(Callback):
    prefix = "p"
    method: str
    amount: int


@dataclass(frozen=True)
class VideoDuration(Callback):
    prefix = "v:d"
    seconds: int


@dataclass(frozen=True)
class VideoAspect(Callback):
    prefix = "v:a"
    ratio: str


@dataclass(frozen=True)
class VideoMode(Callback):
    prefix = "v:m"
    mode: str


@dataclass(frozen=True)
class Confirm(Callback):
    """Start the job of one quote: its id and the price its button showed, in kopecks.

    The price rides along so that a press can only ever pay what the pressed button said.
    """

    prefix = "c"
    quote: str
    price: int


@dataclass(frozen=True)
class CancelDialogue(Callback):
    prefix = "c:no"


@dataclass(frozen=True)
class CancelJob(Callback):
    prefix = "x"
    job_id: int


@dataclass(frozen=True)
class HistoryPage(Callback):
    """A page of ``/history``, 0 the newest."""

    prefix = "h"
    page: int


@dataclass(frozen=True)
class Language(Callback):
    prefix = "l"
    code: str


def build(callback: Callback) -> str:
    """The callback data of ``callback``; raises ValueError when it would not fit Telegram's 64 bytes."""
    data = callback.data
    if len(data.encode("utf-8")) > MAX_BYTES:
        raise ValueError(f"callback data over {MAX_BYTES} bytes: {data!r}")
    if parse(data) != callback:
        raise ValueError(f"callback data does not parse back: {data!r}")
    return data


def parse(data: str | None) -> Callback:
    """What a pressed button means; ``Expired`` for anything unknown or malformed."""
    raw = data or ""
    if len(raw.encode("utf-8")) > MAX_BYTES:
        return Expired(raw[:MAX_BYTES])
    prefix, _sep, value = raw.partition(":")
    parsed = _PARSERS.get(prefix, _expired)(value)
    return parsed if parsed is not None else Expired(raw)


def _number(text: str) -> int | None:
    return int(text) if NUMBER.fullmatch(text) else None


def _expired(value: str) -> None:
    return None


def _menu(value: str) -> Callback | None:
    return Menu(value) if value in MENU_ITEMS else None


def _topup(value: str) -> Callback | None:
    if value == "custom":
        return TopupAmount(None)
    amount = _number(value)
    return TopupAmount(amount) if amount is not None else None


def _pay(value: str) -> Callback | None:
    method, _sep, amount = value.partition(":")
    kopecks = _number(amount)
    return Pay(method, kopecks) if method in PAY_METHODS and kopecks is not None else None


def _video(value: str) -> Callback | None:
    key, _sep, choice = value.partition(":")
    if key == "d":
        seconds = _number(choice)
        return VideoDuration(seconds) if seconds is not None else None
    if key == "a" and ASPECT_RATIO.fullmatch(choice):
        return VideoAspect(choice)
    if key == "m" and WORD.fullmatch(choice):
        return VideoMode(choice)
    return None


def _confirm(value: str) -> Callback | None:
    if value == "no":
        return CancelDialogue()
    quote, _sep, price = value.partition(":")
    kopecks = _number(price)
    return Confirm(quote, kopecks) if QUOTE_ID.fullmatch(quote) and kopecks is not None else None


def _cancel_job(value: str) -> Callback | None:
    job_id = _number(value)
    return CancelJob(job_id) if job_id is not None else None


def _history_page(value: str) -> Callback | None:
    page = _number(value)
    return HistoryPage(page) if page is not None and page <= MAX_HISTORY_PAGE else None


def _language(value: str) -> Callback | None:
    return Language(value) if value in LANGUAGES else None


_PARSERS = {
    "m": _menu, "t": _topup, "p": _pay, "v": _video, "c": _confirm, "x": _cancel_job, "l": _language,
    "h": _history_page,
}
