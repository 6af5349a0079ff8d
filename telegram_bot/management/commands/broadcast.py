"""``manage.py broadcast``: a broadcast from the command line, through the admin's services."""
import time
from datetime import datetime
from pathlib import Path

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from genbot.errors import GenbotError
from telegram_bot import broadcasts
from telegram_bot.models import Broadcast, BroadcastStatus


class Command(BaseCommand):
    help = (
        "Create a broadcast and send it now or at a time (the bot's delivery loop sends it, within "
        "Telegram's limits, once per chat), print its figures, and follow it until done with --wait."
    )

    def add_arguments(self, parser):
        text = parser.add_mutually_exclusive_group(required=True)
        text.add_argument("--text")
        text.add_argument("--text-file", type=Path)
        parser.add_argument("--picture", type=Path, help="a picture sent with the text as its caption (1024 characters)")
        parser.add_argument("--button-text", default="", help="one link button under the message: its text")
        parser.add_argument("--button-url", default="", help="... and its https:// link")
        parser.add_argument("--language", choices=["ru", "en"], help="only customers with this language")
        parser.add_argument("--paid", action="store_true", help="only customers who paid at least once")
        parser.add_argument("--active-days", type=int, help="only customers active in the last N days")
        parser.add_argument("--joined-via", choices=["referral", "promo", "either"],
                            help="only customers who came through a referral link, a promo code, or either")
        parser.add_argument("--include-blocked", action="store_true", help="also customers who blocked the bot")
        parser.add_argument("--dry-run", action="store_true", help="count the audience, create and send nothing")
        parser.add_argument("--send-at", help="send at this time (ISO 8601, e.g. 2026-12-24T10:00+03:00) instead of now")
        parser.add_argument("--wait", action="store_true", help="print the figures until the broadcast is done")
        parser.add_argument("--interval", type=float, default=2.0, help="seconds between two figures lines with --wait")

    def handle(self, *args, **options):
        text = options["text"]
        if options["text_file"] is not None:
            try:
                text = options["text_file"].read_text(encoding="utf-8")
            except OSError as exc:
                raise CommandError(f"cannot read {options['text_file']}: {exc}") from exc
        send_at = self._send_at(options["send_at"])
        fields = dict(
            text=text or "", button_text=options["button_text"], button_url=options["button_url"],
            language=options["language"] or "", paid_at_least_once=options["paid"],
            active_days=options["active_days"], joined_via=options["joined_via"] or "",
            include_blocked=options["include_blocked"],
        )
        self.stdout.write(f"audience: {broadcasts.audience_count(Broadcast(**fields))} customer(s)")
        if options["dry_run"]:
            return
        try:
            broadcast = self._create(fields, options["picture"])
            if send_at is not None:
                broadcast = broadcasts.schedule_broadcast(acting_user=None, broadcast=broadcast, send_at=send_at)
                self.stdout.write(f"broadcast #{broadcast.pk} scheduled for {broadcast.send_at.isoformat()}")
            else:
                broadcast = broadcasts.start_broadcast(acting_user=None, broadcast=broadcast)
                self.stdout.write(f"broadcast #{broadcast.pk} started; the bot's delivery loop sends it")
        except GenbotError as exc:
            raise CommandError(str(exc)) from exc
        if options["wait"]:
            self._follow(broadcast, options["interval"])
        else:
            self.stdout.write(broadcasts.figures(broadcast).line())

    def _create(self, fields: dict, picture: Path | None) -> Broadcast:
        if picture is None:
            return broadcasts.create_broadcast(acting_user=None, **fields)
        try:
            with picture.open("rb") as handle:
                return broadcasts.create_broadcast(acting_user=None, picture=File(handle, name=picture.name), **fields)
        except OSError as exc:
            raise CommandError(f"cannot read {picture}: {exc}") from exc

    def _send_at(self, value: str | None) -> datetime | None:
        if not value:
            return None
        try:
            moment = datetime.fromisoformat(value)
        except ValueError as exc:
            raise CommandError(f"--send-at: not an ISO 8601 time: {value}") from exc
        return timezone.make_aware(moment) if timezone.is_naive(moment) else moment

    def _follow(self, broadcast: Broadcast, interval: float) -> None:
        last = ""
        while True:
            status = Broadcast.objects.filter(pk=broadcast.pk).values_list("status", flat=True).get()
            line = f"{status}: {broadcasts.figures(broadcast).line()}"
            if line != last:
                self.stdout.write(line)
                last = line
            if status in (BroadcastStatus.DONE, BroadcastStatus.CANCELED):
                return
            time.sleep(interval)
