"""Inline keyboards as plain Bot API dicts (they go through the outbox as JSON).

Every button's callback data is a ``telegram_bot.callbacks`` value, built (and checked against
Telegram's 64 bytes) there; handlers get it back through ``callbacks.parse``.
"""
from __future__ import annotations

import urllib.parse
from collections.abc import Iterable

from django.utils.translation import gettext as _

from telegram_bot import callbacks, texts
from telegram_bot.callbacks import (
    CancelDialogue,
    CancelJob,
    Confirm,
    HistoryPage,
    Language,
    ChooseModel,
    ChooseOption,
    Menu,
    OpenSettings,
    Pay,
    ResultAction,
    SettingsDone,
    TopupAmount,
    VideoAspect,
    VideoDuration,
    VideoMode,
)


def button(text: str, callback: callbacks.Callback) -> dict:
    return {"text": text, "callback_data": callbacks.build(callback)}


def url_button(text: str, url: str) -> dict:
    return {"text": text, "url": url}


def inline(*rows: list[dict]) -> dict:
    return {"inline_keyboard": [list(row) for row in rows if row]}


def main_menu() -> dict:
    return inline(
        [button(_("🖼 Picture"), Menu("picture")), button(_("✏️ Edit a photo"), Menu("edit"))],
        [button(_("🎬 Video"), Menu("video")), button(_("💳 Top up"), Menu("topup"))],
        [button(_("💰 Balance"), Menu("balance")), button(_("⏳ My jobs"), Menu("jobs"))],
        [button(_("⚙️ Model and options"), Menu("settings")), button(_("🧾 History"), Menu("history"))],
        [button(_("🌐 Language"), Menu("lang")), button(_("❓ Help"), Menu("help"))],
    )


def topup_amounts(offers: Iterable[tuple[int, int]]) -> dict:
    """One button per (kopecks, bonus percent) offer, "1 000 ₽ +10 %", and one to type an amount."""
    presets = [button(texts.topup_amount_label(amount, bonus), TopupAmount(amount)) for amount, bonus in offers]
    rows = [presets[i : i + 2] for i in range(0, len(presets), 2)]
    return inline(*rows, [button(_("Other amount"), TopupAmount(None))])


def topup_methods(amount: int, stars: int) -> dict:
    return inline(
        [button(_("💳 Card (YooKassa)"), Pay("yk", amount))],
        [button(_("⭐ Telegram Stars (%(stars)s)") % {"stars": stars}, Pay("st", amount))],
    )


def share_invite(link: str) -> dict:
    """Telegram's share screen with the invitation link and a line to go with it."""
    query = urllib.parse.urlencode({"url": link, "text": texts.invite_share_text()}, quote_via=urllib.parse.quote)
    return inline([url_button(texts.share_invite_button(), f"https://t.me/share/url?{query}")])


def pay_link(url: str, amount: int) -> dict:
    return inline([url_button(_("Pay %(amount)s") % {"amount": texts.money(amount)}, url)])


def video_durations(prices: dict[int, int]) -> dict:
    """One button per duration with the cheapest price it can come to ("from"): the quality is
    chosen on the next step, and its buttons then show the exact price."""
    return inline([
        button(_("%(seconds)s s · from %(price)s") % {"seconds": seconds, "price": texts.money(price)}, VideoDuration(seconds))
        for seconds, price in prices.items()
    ])


PREFERRED_ASPECTS = ("16:9", "9:16", "1:1")


def video_aspects(ratios) -> dict:
    ordered = [r for r in PREFERRED_ASPECTS if r in ratios] + sorted(set(ratios) - set(PREFERRED_ASPECTS))
    return inline([button(r, VideoAspect(r)) for r in ordered])


def video_modes(prices: dict[str, tuple[int, bool]]) -> dict:
    """One button per quality with the price it makes: (kopecks, exact); "from" when not exact
    (see ``quotes.video_mode_prices``)."""
    buttons = []
    for mode, (price, exact) in prices.items():
        label = _("%(mode)s · %(price)s") if exact else _("%(mode)s · from %(price)s")
        buttons.append(button(label % {"mode": texts.MODE_NAMES.get(mode, mode), "price": texts.money(price)}, VideoMode(mode)))
    return inline(buttons)


def confirm(quote: str, price: int, *, group: str = "") -> dict:
    """The confirm button of one quote: it can start that quote's job and nothing else; with
    ``group``, a button to change the model and options first (the order is quoted again)."""
    return inline(
        [button(_("✅ Start for %(price)s") % {"price": texts.money(price)}, Confirm(quote, price))],
        [settings_button(group)] if group else [],
        [button(_("✖️ Cancel"), CancelDialogue())],
    )


def topup_to_confirm(amount: int, *, group: str = "") -> dict:
    """For a quote above the balance: top up ``amount`` (the quote is shown again once paid)."""
    return inline(
        [button(_("💳 Top up %(amount)s") % {"amount": texts.money(amount)}, TopupAmount(amount))],
        [settings_button(group)] if group else [],
        [button(_("✖️ Cancel"), CancelDialogue())],
    )


def result_actions(job, index: int, *, original_button: bool) -> dict:
    """The buttons under a result: Again (a new quote of the same order); for a picture also
    Edit this and Animate (it becomes the input) and, when not sent already, its original file."""
    again = [button(_("🔁 Again"), ResultAction("again", job.pk, index))]
    if not job.result_mime.startswith("image/"):
        return inline(again)
    return inline(
        again,
        [button(_("✏️ Edit this"), ResultAction("edit", job.pk, index)),
         button(_("🎬 Animate"), ResultAction("animate", job.pk, index))],
        [button(_("📎 Original file"), ResultAction("file", job.pk, index))] if original_button else [],
    )


def resend_results(jobs) -> list[dict]:
    """One button per job whose results are kept: send them again (under a /history page)."""
    return [button(_("📤 #%(id)s") % {"id": job.pk}, ResultAction("send", job.pk, 0)) for job in jobs]


def settings_button(group: str) -> dict:
    return button(_("⚙️ Model and options"), OpenSettings(group))


def settings_groups() -> dict:
    return inline([button(_("🖼 Pictures"), OpenSettings("picture")), button(_("🎬 Videos"), OpenSettings("video"))])


def settings_screen(group: str, model: str, options: dict, models, choices) -> dict:
    """The model and option buttons of a group, each with the price of the order with that
    choice (✓ on the current ones): ``models`` [(offer, kopecks)], ``choices`` [(option name,
    [(value, kopecks)])]."""
    from telegram_bot.offers import wire_value

    def label(text: str, price: int, chosen: bool) -> str:
        return ("✓ " if chosen else "") + _("%(choice)s · %(price)s") % {"choice": text, "price": texts.money(price)}

    rows = [[button(label(offer.title, price, offer.key == model), ChooseModel(group, offer.key))] for offer, price in models]
    for name, priced in choices:
        row = [button(label(texts.option_value(name, value), price, options.get(name) == value),
                      ChooseOption(group, name, wire_value(value))) for value, price in priced]
        rows += [row[i : i + 3] for i in range(0, len(row), 3)]
    rows.append([button(_("✅ Done"), SettingsDone(group))])
    return inline(*rows)


def cancel_job(job_id: int) -> dict:
    return inline([button(_("✖️ Cancel"), CancelJob(job_id))])


def topup_button() -> dict:
    return inline([button(_("💳 Top up"), Menu("topup"))])


def languages() -> dict:
    return inline([button("🇷🇺 Русский", Language("ru")), button("🇬🇧 English", Language("en"))])


def history_pages(page, resend=()) -> dict | None:
    """◀ Older / Newer ▶ under a history page (``telegram_bot.selectors.HistoryPage``), and a
    button per job in ``resend`` that sends its kept result again."""
    resend = list(resend)
    rows = [resend[i : i + 4] for i in range(0, len(resend), 4)]
    row = []
    if page.has_older:
        row.append(button(_("◀ Older"), HistoryPage(page.number + 1)))
    if page.number > 0:
        row.append(button(_("Newer ▶"), HistoryPage(page.number - 1)))
    return inline(*rows, row) if rows or row else None
