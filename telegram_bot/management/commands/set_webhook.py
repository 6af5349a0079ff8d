"""``manage.py set_webhook [URL]``: webhook mode (Telegram POSTs updates to the web process)."""
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from telegram_bot.bot import ALLOWED_UPDATES, build_bot


class Command(BaseCommand):
    help = "Register the webhook URL (default TELEGRAM_WEBHOOK_URL) with the secret token."

    def add_arguments(self, parser):
        parser.add_argument("url", nargs="?", default="")
        parser.add_argument("--drop-pending-updates", action="store_true")

    def handle(self, *args, url="", drop_pending_updates=False, **options):
        url = url or settings.TELEGRAM_WEBHOOK_URL
        if not url:
            raise CommandError("Give the URL or set TELEGRAM_WEBHOOK_URL.")
        if not settings.TELEGRAM_WEBHOOK_SECRET:
            raise CommandError("Set TELEGRAM_WEBHOOK_SECRET: the webhook view refuses updates without it.")
        bot = build_bot(threaded=False)
        bot.set_webhook(url=url, secret_token=settings.TELEGRAM_WEBHOOK_SECRET, allowed_updates=ALLOWED_UPDATES,
                        drop_pending_updates=drop_pending_updates)
        self.stdout.write(f"webhook set to {url}")
