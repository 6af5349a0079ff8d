"""``manage.py runbot``: long polling plus the outbox delivery loop; SIGTERM/SIGINT stop cleanly."""
import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from telegram_bot.delivery import OutboxDelivery


class Command(BaseCommand):
    help = "Run the Telegram bot (long polling) and deliver the outbox."

    def add_arguments(self, parser):
        parser.add_argument("--delivery-only", action="store_true",
                            help="Only deliver the outbox (webhook mode: the web process receives updates).")

    def handle(self, *args, delivery_only=False, **options):
        if not settings.BOT_TOKEN and "api.telegram.org" in settings.TELEGRAM_API_URL:
            raise CommandError(
                "BOT_TOKEN is empty. Set it, or point TELEGRAM_API_URL at a local Bot API server "
                "(bin/run starts the sandbox: manage.py run_sandbox)."
            )
        if delivery_only:
            return self._delivery_only()
        from telegram_bot.runner import BotRunner

        runner = BotRunner()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: runner.stop())
        self.stdout.write(f"bot polling {settings.TELEGRAM_API_URL} (Ctrl-C or SIGTERM to stop)")
        runner.run()

    def _delivery_only(self):
        import threading

        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        delivery = OutboxDelivery().start()
        self.stdout.write("delivering the outbox (Ctrl-C or SIGTERM to stop)")
        while not stop.wait(1):
            pass
        delivery.stop()
