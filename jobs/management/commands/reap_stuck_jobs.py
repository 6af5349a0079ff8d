from django.core.management.base import BaseCommand

from jobs.services import reap_stuck_jobs


class Command(BaseCommand):
    help = ("Resume overdue polls and tries, try again jobs whose worker died (up to JOB_MAX_ATTEMPTS), fail and "
            "refund the rest and the jobs that waited JOB_QUEUE_TIMEOUT for a slot; enqueue again lost pending jobs.")

    def handle(self, *args, **options):
        report = reap_stuck_jobs()
        self.stdout.write(
            f"failed and refunded: {report.failed}; enqueued again: {report.requeued}; "
            f"resumed: {report.resumed}; waited too long: {report.expired}"
        )
