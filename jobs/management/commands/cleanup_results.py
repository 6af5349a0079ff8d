from django.conf import settings
from django.core.management.base import BaseCommand

from jobs.services import cleanup_results


class Command(BaseCommand):
    help = "Delete result files of jobs finished more than RESULT_TTL_DAYS days ago."

    def handle(self, *args, **options):
        count = cleanup_results()
        self.stdout.write(f"deleted the files of {count} jobs older than {settings.RESULT_TTL_DAYS} days")
