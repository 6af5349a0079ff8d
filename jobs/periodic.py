"""The project's repeating tasks, in one place: ``settings.PERIODIC_TASKS``.

Each entry is ``(dotted path, queue name, schedule)``, the schedule being seconds (an int) or a
cron string. Entries are dotted paths so jobs imports no other app; one that does not import
(an app not deployed yet) is logged and skipped, never fatal. ``manage.py run_periodic``
registers them with RQ's cron scheduler, which enqueues each when due, so any worker runs it
(``jobs.worker.JobWorker``: fresh database connections around each job); without Redis it calls
them itself in a small loop, each call bracketed the same way (``genbot.dbhygiene``), so a
dropped database connection fails at most the one call it broke, never the loop.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from croniter import croniter
from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string

from genbot import dbhygiene

logger = logging.getLogger(__name__)


@dataclass
class PeriodicTask:
    path: str
    queue: str
    schedule: int | str
    func: Callable = field(repr=False)
    next_run: float = 0.0

    def schedule_kwargs(self) -> dict:
        return {"cron": self.schedule} if isinstance(self.schedule, str) else {"interval": int(self.schedule)}

    def plan_next(self, now: datetime) -> None:
        """Set ``next_run`` (a unix time) from ``now``, for the loop without Redis."""
        if isinstance(self.schedule, str):
            self.next_run = croniter(self.schedule, now).get_next(float)
        else:
            self.next_run = now.timestamp() + int(self.schedule)


def load_periodic_tasks(entries: Iterable | None = None) -> list[PeriodicTask]:
    """The importable entries of ``PERIODIC_TASKS``; the others are logged as errors and skipped."""
    tasks = []
    for path, queue, schedule in settings.PERIODIC_TASKS if entries is None else entries:
        if isinstance(schedule, str) and not croniter.is_valid(schedule):
            logger.error("periodic task %s: %r is not a cron expression; skipped", path, schedule)
            continue
        try:
            func = import_string(path)
        except ImportError as exc:
            logger.error("periodic task %s cannot be imported (%s); skipped", path, exc)
            continue
        tasks.append(PeriodicTask(path=path, queue=queue, schedule=schedule, func=func))
    return tasks


def build_cron_scheduler(tasks: list[PeriodicTask]):
    """RQ's cron scheduler (django-rq flavour) with every task registered."""
    from django_rq.cron import DjangoCronScheduler

    scheduler = DjangoCronScheduler(name="genbot-periodic")
    for task in tasks:
        scheduler.register(task.func, task.queue, name=task.path, job_timeout=600, **task.schedule_kwargs())
    return scheduler


def run_due(tasks: list[PeriodicTask], *, now: datetime | None = None) -> list[str]:
    """Call, in this thread, each task that is due; returns the paths that ran. (No Redis.)"""
    now = now or timezone.now()
    ran = []
    for task in tasks:
        if task.next_run == 0.0:
            task.plan_next(now)
            if isinstance(task.schedule, int):
                task.next_run = now.timestamp()  # interval tasks run once at start, like RQ's
        if now.timestamp() >= task.next_run:
            try:
                with dbhygiene.unit_of_work():
                    task.func()
            except Exception:  # noqa: BLE001 - one failing task must not stop the others
                logger.exception("periodic task %s failed", task.path)
            task.plan_next(now)
            ran.append(task.path)
    return ran


def run_forever(tasks: list[PeriodicTask], *, tick: float = 1.0, should_stop: Callable[[], bool] = lambda: False) -> None:
    while not should_stop():
        run_due(tasks)
        time.sleep(tick)
