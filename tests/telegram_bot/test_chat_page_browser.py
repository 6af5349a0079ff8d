"""The sandbox chat page in a real browser (Playwright driving Debian's chromium): a person types
/start, presses a button, sees the reply; a screenshot is saved."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from django.conf import settings

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOT = Path(settings.BASE_DIR) / "var" / "screenshots" / "sandbox_chat.png"


def test_the_chat_page_sends_start_presses_a_button_and_shows_the_reply(bot):
    from playwright.sync_api import expect, sync_playwright

    chat_id = bot.chat().chat_id
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 900, "height": 1000})
            page.goto(f"{bot.sandbox.url}/?chat_id={chat_id}&lang=en")
            page.fill("#text", "/start")
            page.click("#send")
            expect(page.locator(".msg .text", has_text="Your balance")).to_be_visible(timeout=15_000)
            page.get_by_role("button", name="💰 Balance").first.click()
            replies = page.locator(".msg:not(.me)")
            expect(replies).to_have_count(2, timeout=15_000)  # the menu, then the balance
            expect(replies.last.locator(".text")).to_have_text("Your balance: ₽0.")
            expect(replies.last.get_by_role("button", name="💳 Top up")).to_be_visible()
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
        finally:
            browser.close()
    assert SCREENSHOT.stat().st_size > 10_000
