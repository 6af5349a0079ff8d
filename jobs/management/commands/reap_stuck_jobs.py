from django.core.management.base import BaseCommand

from jobs.services import reap_stuck_jobs


class Command(BaseCommand):
    help = "Fail and refund jobs whose worker stopped beating; enqueue again pending jobs whose message was lost."

    def handle(self, *args, **options):
        report = reap_stuck_jobs()
        self.stdout.write(f"failed and refunded: {report.failed}; enqueued again: {report.requeued}")
