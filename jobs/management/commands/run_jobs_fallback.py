import signal
import threading

from django.core.management.base import BaseCommand

from jobs import periodic, queueing
from jobs.services import resume_pending_jobs


class Command(BaseCommand):
    help = (
        "Run generation jobs without Redis: pick up pending jobs, run them in the in-process "
        "pool, and run the periodic tasks (reaper, clean-up) here. SIGTERM lets running jobs finish."
    )

    def handle(self, *args, **options):
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        self.stdout.write(f"resumed {resume_pending_jobs()} pending jobs")
        tasks = periodic.load_periodic_tasks()
        try:
            while not stop.is_set():
                periodic.run_due(tasks)
                stop.wait(1.0)
        except KeyboardInterrupt:
            pass
        self.stdout.write("stopping: letting running jobs finish")
        queueing.shutdown_fallback(wait=True)
