from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from billing.selectors import broadcast_audience
from telegram_bot.sender import broadcast


class Command(BaseCommand):
    help = (
        "Message chosen customers through the one sender (within Telegram's limits), showing progress "
        "and delivery counts; customers who blocked the bot are marked."
    )

    def add_arguments(self, parser):
        text = parser.add_mutually_exclusive_group(required=True)
        text.add_argument("--text")
        text.add_argument("--text-file", type=Path)
        parser.add_argument("--language", choices=["ru", "en"], help="only customers with this language")
        parser.add_argument("--telegram-id", type=int, action="append", dest="telegram_ids", help="repeatable")
        parser.add_argument("--active-days", type=int, help="only customers seen in the last N days")
        parser.add_argument("--dry-run", action="store_true", help="count the audience, send nothing")

    def handle(self, *args, text=None, text_file=None, language=None, telegram_ids=None, active_days=None,
               dry_run=False, **options):
        if text_file is not None:
            try:
                text = text_file.read_text(encoding="utf-8")
            except OSError as exc:
                raise CommandError(f"cannot read {text_file}: {exc}") from exc
        text = (text or "").strip()
        if not text:
            raise CommandError("the message is empty")
        if len(text) > 4096:
            raise CommandError(f"the message has {len(text)} characters; Telegram allows 4096")
        chat_ids = list(broadcast_audience(language=language, telegram_ids=telegram_ids, active_days=active_days)
                        .values_list("telegram_id", flat=True))
        total = len(chat_ids)
        self.stdout.write(f"audience: {total} customer(s)")
        if dry_run or not total:
            return
        step = max(total // 20, 1)

        def progress(result):
            done = result.sent + result.blocked + result.failed
            if done % step == 0 or done == total:
                self.stdout.write(f"  {done}/{total} ({done * 100 // total}%)")

        result = broadcast(chat_ids, text, on_progress=progress)
        self.stdout.write(
            f"sent {result.sent}, bot blocked by {result.blocked}, failed {result.failed}, "
            f"429s {result.too_many_requests}, {result.seconds:.1f} s ({result.messages_per_second:.1f} msg/s)"
        )
        for line in result.errors[:20]:
            self.stdout.write(self.style.WARNING(line))
