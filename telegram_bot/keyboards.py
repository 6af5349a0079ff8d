"""Inline keyboards as plain Bot API dicts (they go through the outbox as JSON).

Callback data is short and parsed in ``handlers``: ``m:<menu item>``, ``t:<kopecks>|custom``,
``p:<yk|st>:<kopecks>``, ``v:<d|a|m>:<value>``, ``c:<ok|no>``, ``x:<job id>``, ``l:<ru|en>``,
``h:<history page>`` (built and parsed here).
"""
from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext as _

from telegram_bot import texts


def button(text: str, data: str) -> dict:
    return {"text": text, "callback_data": data}


def url_button(text: str, url: str) -> dict:
    return {"text": text, "url": url}


def inline(*rows: list[dict]) -> dict:
    return {"inline_keyboard": [list(row) for row in rows if row]}


def main_menu() -> dict:
    return inline(
        [button(_("🖼 Picture"), "m:picture"), button(_("✏️ Edit a photo"), "m:edit")],
        [button(_("🎬 Video"), "m:video"), button(_("💳 Top up"), "m:topup")],
        [button(_("💰 Balance"), "m:balance"), button(_("⏳ My jobs"), "m:jobs")],
        [button(_("🧾 History"), "m:history"), button(_("🌐 Language"), "m:lang"), button(_("❓ Help"), "m:help")],
    )


def topup_amounts() -> dict:
    presets = [button(texts.money(k), f"t:{k}") for k in settings.TOPUP_PRESETS_KOPECKS]
    rows = [presets[i : i + 2] for i in range(0, len(presets), 2)]
    return inline(*rows, [button(_("Other amount"), "t:custom")])


def topup_methods(amount: int, stars: int) -> dict:
    return inline(
        [button(_("💳 Card (YooKassa)"), f"p:yk:{amount}")],
        [button(_("⭐ Telegram Stars (%(stars)s)") % {"stars": stars}, f"p:st:{amount}")],
    )


def pay_link(url: str, amount: int) -> dict:
    return inline([url_button(_("Pay %(amount)s") % {"amount": texts.money(amount)}, url)])


def video_durations(durations) -> dict:
    return inline([button(_("%(seconds)s s") % {"seconds": d}, f"v:d:{d}") for d in durations])


PREFERRED_ASPECTS = ("16:9", "9:16", "1:1")


def video_aspects(ratios) -> dict:
    ordered = [r for r in PREFERRED_ASPECTS if r in ratios] + sorted(set(ratios) - set(PREFERRED_ASPECTS))
    return inline([button(r, f"v:a:{r}") for r in ordered])


def video_modes(modes) -> dict:
    return inline([button(str(texts.MODE_NAMES.get(m, m)), f"v:m:{m}") for m in modes])


def confirm(price: int) -> dict:
    return inline(
        [button(_("✅ Start for %(price)s") % {"price": texts.money(price)}, "c:ok")],
        [button(_("✖️ Cancel"), "c:no")],
    )


def cancel_job(job_id: int) -> dict:
    return inline([button(_("✖️ Cancel"), f"x:{job_id}")])


def topup_button() -> dict:
    return inline([button(_("💳 Top up"), "m:topup")])


def languages() -> dict:
    return inline([button("🇷🇺 Русский", "l:ru"), button("🇬🇧 English", "l:en")])


def history_page_data(page: int) -> str:
    return f"h:{page}"


def parse_history_page(data: str) -> int | None:
    """The page of an ``h:`` button; None for anything else."""
    prefix, _sep, page = (data or "").partition(":")
    return int(page) if prefix == "h" and page.isdigit() and len(page) <= 4 else None


def history_pages(page) -> dict | None:
    """◀ Older / Newer ▶ under a history page (``telegram_bot.selectors.HistoryPage``)."""
    row = []
    if page.has_older:
        row.append(button(_("◀ Older"), history_page_data(page.number + 1)))
    if page.number > 0:
        row.append(button(_("Newer ▶"), history_page_data(page.number - 1)))
    return inline(row) if row else None
