from datetime import timedelta

from django.core.management.base import BaseCommand

from payments import services


class Command(BaseCommand):
    help = "Ask YooKassa about payments left pending (lost notifications) and retry unfinished refunds."

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than", type=int, default=None, metavar="MINUTES",
            help="only payments pending at least this long (default PAYMENTS_SYNC_AFTER_MINUTES)",
        )

    def handle(self, *args, older_than=None, **options):
        report = services.sync_pending_payments(
            older_than=None if older_than is None else timedelta(minutes=older_than)
        )
        self.stdout.write(", ".join(f"{k}={v}" for k, v in report.as_dict().items()))
        if report.errors:
            self.stderr.write(f"{report.errors} could not be synced (see the log); the next run tries them again")
