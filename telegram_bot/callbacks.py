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
``c:no`` (drop the dialogue), ``x:<job id>``, ``l:<language>``, ``h:<history page>``,
``r:<again|edit|animate|file|send>:<job id>:<result index>`` (the buttons under a result),
``s:<picture|video>`` (the settings screen), ``s:m:<group>:<offer key>``,
``s:o:<group>:<option>:<value>`` and ``s:d:<group>`` (settings chosen, back to the order).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import astuple, dataclass
from typing import ClassVar

MAX_BYTES = 64
MENU_ITEMS = ("picture", "edit", "video", "topup", "balance", "jobs", "history", "lang", "help", "settings")
PAY_METHODS = ("yk", "st")
LANGUAGES = ("ru", "en")
# /history keeps pages within reach (``telegram_bot.selectors``): a page number is at most this.
MAX_HISTORY_PAGE = 9999
# A quote id is a short random token (see ``telegram_bot.quotes``): URL-safe base64, no ":".
QUOTE_ID = re.compile(r"[A-Za-z0-9_-]{4,16}")
ASPECT_RATIO = re.compile(r"\d{1,2}:\d{1,2}")
WORD = re.compile(r"[a-z]{1,16}")
# A catalogue offer's key ("nano-banana-pro") and an option's value ("16:9", "2K", "10", "on").
OFFER_KEY = re.compile(r"[a-z0-9][a-z0-9._-]{0,39}")
OPTION_VALUE = re.compile(r"[A-Za-z0-9:.]{1,8}")
RESULT_ACTIONS = ("again", "edit", "animate", "file", "send")
# What a customer's remembered settings are for: pictures (and photo edits), videos.
SETTINGS_GROUPS = ("picture", "video")
SETTING_NAMES = ("aspect_ratio", "image_size", "duration", "mode", "sound")
# Kopecks and ids: digits only, no sign, no leading zero, and short enough to be sane.
NUMBER = re.compile(r"0|[1-9]\d{0,11}")


@dataclass(frozen=True)
class Field:
    """How one field of a button goes on the wire.

    The text must match ``pattern`` in full; ``convert`` makes the value of it (``int`` for
    numbers), which must not exceed ``maximum`` when one is set; ``none`` is the word that
    stands for None in a field that may be empty.
    """

    pattern: re.Pattern
    convert: Callable[[str], object] = str
    maximum: int | None = None
    none: str | None = None

    def parse(self, text: str) -> object:
        """The value of ``text``; ValueError when the text is not one."""
        if self.none is not None and text == self.none:
            return None
        if not self.pattern.fullmatch(text):
            raise ValueError(text)
        value = self.convert(text)
        if self.maximum is not None and value > self.maximum:
            raise ValueError(text)
        return value

    def format(self, value: object) -> str:
        return self.none if value is None and self.none is not None else str(value)


def one_of(words: tuple[str, ...]) -> Field:
    return Field(re.compile("|".join(re.escape(word) for word in words)))


AMOUNT = Field(NUMBER, int)
# Every kind of button (each subclass of ``Callback`` with a prefix), as ``parse`` tries them.
KINDS: list[type[Callback]] = []


class Callback:
    """A button's meaning; ``data`` is what goes into ``callback_data``: the class's ``prefix``
    and the fields, in order, each written by its ``Field`` of ``wire``, joined by ":".

    A kind of button is declared with its wire form, ``class Pay(Callback, prefix="p",
    wire=(...))``, one ``Field`` per dataclass field; ``parse`` then knows it.
    """

    prefix: ClassVar[str] = ""
    wire: ClassVar[tuple[Field, ...]] = ()

    def __init_subclass__(cls, *, prefix: str = "", wire: tuple[Field, ...] = (), **kwargs):
        super().__init_subclass__(**kwargs)
        if prefix:
            cls.prefix, cls.wire = prefix, wire
            # The longest prefix first, so "c:no" is tried before "c".
            KINDS.append(cls)
            KINDS.sort(key=lambda kind: -len(kind.prefix))

    @property
    def data(self) -> str:
        return ":".join([self.prefix, *(spec.format(value) for spec, value in zip(self.wire, astuple(self)))])

    @classmethod
    def from_data(cls, data: str) -> Callback | None:
        """This kind of button from ``data``; None when ``data`` is not one of it.

        The last field takes the rest of the data, so it may hold a ":" (an aspect ratio).
        """
        if not cls.wire:
            return cls() if data == cls.prefix else None
        head = cls.prefix + ":"
        if not data.startswith(head):
            return None
        parts = data[len(head):].split(":", len(cls.wire) - 1)
        if len(parts) != len(cls.wire):
            return None
        try:
            return cls(*(spec.parse(part) for spec, part in zip(cls.wire, parts)))
        except ValueError:
            return None


@dataclass(frozen=True)
class Expired(Callback):
    """Anything the bot cannot (or no longer) act on: answered with the "offer expired" text."""

    raw: str = ""

    @property
    def data(self) -> str:
        return self.raw


@dataclass(frozen=True)
class Menu(Callback, prefix="m", wire=(one_of(MENU_ITEMS),)):
    item: str


@dataclass(frozen=True)
class TopupAmount(Callback, prefix="t", wire=(Field(NUMBER, int, none="custom"),)):
    """A top-up amount in kopecks; ``None`` asks the customer to type one."""

    amount: int | None


@dataclass(frozen=True)
class Pay(Callback, prefix="p", wire=(one_of(PAY_METHODS), AMOUNT)):
    method: str
    amount: int


@dataclass(frozen=True)
class VideoDuration(Callback, prefix="v:d", wire=(AMOUNT,)):
    seconds: int


@dataclass(frozen=True)
class VideoAspect(Callback, prefix="v:a", wire=(Field(ASPECT_RATIO),)):
    ratio: str


@dataclass(frozen=True)
class VideoMode(Callback, prefix="v:m", wire=(Field(WORD),)):
    mode: str


@dataclass(frozen=True)
class Confirm(Callback, prefix="c", wire=(Field(QUOTE_ID), AMOUNT)):
    """Start the job of one quote: its id and the price its button showed, in kopecks.

    The price rides along so that a press can only ever pay what the pressed button said.
    """

    quote: str
    price: int


@dataclass(frozen=True)
class CancelDialogue(Callback, prefix="c:no"):
    """Drop the dialogue (and the quote shown)."""


@dataclass(frozen=True)
class CancelJob(Callback, prefix="x", wire=(AMOUNT,)):
    job_id: int


@dataclass(frozen=True)
class HistoryPage(Callback, prefix="h", wire=(Field(NUMBER, int, maximum=MAX_HISTORY_PAGE),)):
    """A page of ``/history``, 0 the newest."""

    page: int


@dataclass(frozen=True)
class Language(Callback, prefix="l", wire=(one_of(LANGUAGES),)):
    code: str


@dataclass(frozen=True)
class ResultAction(Callback, prefix="r", wire=(one_of(RESULT_ACTIONS), AMOUNT, Field(NUMBER, int, maximum=99))):
    """A button under a result: ``again`` (the same order, quoted anew), ``edit`` (the result
    becomes the input of a photo edit), ``animate`` (a video from it), ``file`` (its original
    file as a document), ``send`` (send the kept result again, from /history). ``index``: which
    of the job's result files."""

    action: str
    job_id: int
    index: int = 0


GROUP = one_of(SETTINGS_GROUPS)


@dataclass(frozen=True)
class OpenSettings(Callback, prefix="s", wire=(GROUP,)):
    group: str


@dataclass(frozen=True)
class ChooseModel(Callback, prefix="s:m", wire=(GROUP, Field(OFFER_KEY))):
    group: str
    model: str


@dataclass(frozen=True)
class ChooseOption(Callback, prefix="s:o", wire=(GROUP, one_of(SETTING_NAMES), Field(OPTION_VALUE))):
    group: str
    name: str
    value: str


@dataclass(frozen=True)
class SettingsDone(Callback, prefix="s:d", wire=(GROUP,)):
    group: str


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
    for kind in KINDS:
        parsed = kind.from_data(raw)
        if parsed is not None:
            return parsed
    return Expired(raw)
