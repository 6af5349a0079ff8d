import signal

from django.core.management.base import BaseCommand

from jobs import periodic, queueing


class Command(BaseCommand):
    help = (
        "Run the repeating tasks of settings.PERIODIC_TASKS: registered with RQ's cron scheduler "
        "(workers run them), or called in this process when Redis does not answer."
    )

    def add_arguments(self, parser):
        parser.add_argument("--list", action="store_true", help="Show the tasks that would run, then exit.")

    def handle(self, *args, **options):
        tasks = periodic.load_periodic_tasks()
        for task in tasks:
            self.stdout.write(f"{task.path} on {task.queue}: {task.schedule}")
        if options["list"]:
            return
        if queueing.redis_available("default"):
            periodic.build_cron_scheduler(tasks).start()
            return
        self.stdout.write("Redis does not answer: running the tasks in this process")
        stopping = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        try:
            periodic.run_forever(tasks, should_stop=lambda: bool(stopping))
        except KeyboardInterrupt:
            pass
