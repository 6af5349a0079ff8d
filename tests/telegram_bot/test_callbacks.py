"""Callback data: one module builds and parses every button's data; garbage parses to Expired."""
from __future__ import annotations

import pytest

from telegram_bot import callbacks, keyboards
from telegram_bot.quotes import new_quote_id

EVERY_KIND = [
    callbacks.Menu("picture"), callbacks.Menu("help"), callbacks.TopupAmount(50_000), callbacks.TopupAmount(None),
    callbacks.Pay("yk", 25_000), callbacks.Pay("st", 10_000), callbacks.VideoDuration(10),
    callbacks.VideoAspect("16:9"), callbacks.VideoAspect("9:16"), callbacks.VideoMode("pro"),
    callbacks.Confirm("aB3-x_9Z", 5_000), callbacks.Confirm("aB3-x_9Z", 0), callbacks.CancelDialogue(),
    callbacks.CancelJob(123456), callbacks.Language("en"),
]


@pytest.mark.parametrize("callback", EVERY_KIND, ids=repr)
def test_every_button_round_trips(callback):
    data = callbacks.build(callback)
    assert callbacks.parse(data) == callback


def test_the_wire_forms_stay_those_existing_keyboards_used():
    # Buttons already on screen in customers' chats keep working across the deploy.
    shown = (
        callbacks.Menu("topup"), callbacks.TopupAmount(None), callbacks.Pay("st", 100), callbacks.VideoAspect("1:1"),
        callbacks.CancelDialogue(), callbacks.CancelJob(7), callbacks.Language("ru"),
    )
    assert [callbacks.build(c) for c in shown] == ["m:topup", "t:custom", "p:st:100", "v:a:1:1", "c:no", "x:7", "l:ru"]


def test_the_largest_confirm_data_fits_telegrams_64_bytes():
    data = callbacks.build(callbacks.Confirm(new_quote_id(), 999_999_999_999))
    assert len(data.encode()) <= callbacks.MAX_BYTES


def test_building_data_over_64_bytes_is_refused():
    with pytest.raises(ValueError, match="64 bytes"):
        callbacks.build(callbacks.Menu("x" * 70))


def test_building_data_that_would_not_parse_back_is_refused():
    with pytest.raises(ValueError, match="parse back"):
        callbacks.build(callbacks.Menu("nonsense"))


@pytest.mark.parametrize("garbage", [
    None, "", "c:ok", "c:", "c::100", "c:abcdefgh", "c:abcdefgh:-5", "c:abcdefgh:1e3", "c:ab:100", "c:abc:def:100",
    "m:", "m:format-disk", "t:", "t:-100", "t:01", "p:yk", "p:paypal:100", "p:yk:ten", "v:", "v:d:five", "v:a:wide",
    "v:m:ULTRA", "v:z:1", "x:", "x:abc", "x:-1", "l:de", "h:", "h:10000", "c:no:5", "zz:1", "ok", "é" * 40, "c:" + "a" * 70 + ":1",
])
def test_unknown_or_garbled_data_parses_to_expired(garbage):
    assert isinstance(callbacks.parse(garbage), callbacks.Expired)


def test_keyboards_carry_only_data_that_parses(settings):
    boards = [
        keyboards.main_menu(), keyboards.topup_amounts([(10_000, 0), (100_000, 10)]), keyboards.topup_methods(30_000, 300),
        keyboards.video_durations({5: 5_000, 10: 10_000}), keyboards.video_aspects(["16:9", "9:16", "1:1"]),
        keyboards.video_modes({"std": (5_000, True), "pro": (9_000, False)}), keyboards.confirm(new_quote_id(), 1_500),
        keyboards.topup_to_confirm(10_000), keyboards.cancel_job(42), keyboards.languages(),
    ]
    for board in boards:
        for row in board["inline_keyboard"]:
            for button in row:
                assert not isinstance(callbacks.parse(button["callback_data"]), callbacks.Expired), button
