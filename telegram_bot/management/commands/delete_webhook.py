"""``manage.py delete_webhook``: back to long polling (``runbot``)."""
from django.core.management.base import BaseCommand

from telegram_bot.bot import build_bot


class Command(BaseCommand):
    help = "Remove the webhook so that runbot can poll."

    def add_arguments(self, parser):
        parser.add_argument("--drop-pending-updates", action="store_true")

    def handle(self, *args, drop_pending_updates=False, **options):
        build_bot(threaded=False).delete_webhook(drop_pending_updates=drop_pending_updates)
        self.stdout.write("webhook deleted")
