"""Heartbeats and progress of the jobs running in this process, batched into one UPDATE a beat.

One daemon thread per process (started on first use, restarted after a fork) beats every
``JOB_HEARTBEAT_INTERVAL`` seconds for each running job: it writes ``heartbeat_at`` and the
latest progress with ``WHERE status = 'processing'``. When no row matches, the job was
cancelled (or reaped) behind the worker's back: the job's flag is set and its provider stops at
its next poll. Progress changes are announced with ``job_progress`` after the beat committed. The
beat renews the provider slots of the running jobs.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import time

from django.conf import settings
from django.db import close_old_connections, connections
from django.utils import timezone

from . import quota
from .models import Job, JobStatus
from .providers.base import JobCancelled, ProgressReporter
from .signals import announce_progress

logger = logging.getLogger(__name__)


class RunningJob(ProgressReporter):
    """The reporter handed to a provider: records progress, raises once the job is cancelled."""

    def __init__(self, job: Job):
        self.job = job
        self.progress = job.progress
        self.saved_progress = job.progress
        self.cancelled = threading.Event()

    def report(self, progress: int) -> None:
        self.progress = max(self.progress, min(99, int(progress)))
        self.check_cancelled()

    def check_cancelled(self) -> None:
        if self.cancelled.is_set():
            raise JobCancelled(self.job.pk)


def beat_interval() -> float:
    """Seconds between beats: the setting, but always several beats per reaper time-out."""
    return max(0.05, min(settings.JOB_HEARTBEAT_INTERVAL, settings.JOB_HEARTBEAT_TIMEOUT / 4))


class HeartbeatMonitor:
    def __init__(self) -> None:
        self.running: dict[int, RunningJob] = {}
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.stopped = threading.Event()
        self.pid = os.getpid()
        self.thread = threading.Thread(target=self._loop, name="genbot-heartbeat", daemon=True)
        self.thread.start()

    def add(self, run: RunningJob) -> None:
        with self.lock:
            self.running[run.job.pk] = run

    def remove(self, run: RunningJob) -> None:
        with self.lock:
            self.running.pop(run.job.pk, None)

    def _loop(self) -> None:
        # Shutdown signals are for the main thread (the worker's handlers); see jobs/worker.py.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        last = time.monotonic()
        while not self.stopped.is_set():
            # Short naps, so a changed interval (tests) takes effect at once.
            self.wake.wait(min(beat_interval(), 0.25))
            self.wake.clear()
            if time.monotonic() - last < beat_interval():
                continue
            last = time.monotonic()
            try:
                self.beat()
            except Exception:  # noqa: BLE001 - a failed beat must not end the thread
                logger.exception("heartbeat failed")
                connections.close_all()
        connections.close_all()

    def stop(self) -> None:
        self.stopped.set()
        self.wake.set()
        self.thread.join(5)

    def beat(self) -> None:
        with self.lock:
            runs = list(self.running.values())
        if not runs:
            # Idle: give the database connection back rather than hold it between jobs.
            connections.close_all()
            return
        close_old_connections()
        now = timezone.now()
        for run in runs:
            progress = run.progress
            matched = Job.objects.filter(pk=run.job.pk, status=JobStatus.PROCESSING).update(
                heartbeat_at=now, progress=progress
            )
            if not matched:
                run.cancelled.set()
            elif progress != run.saved_progress:
                run.saved_progress = progress
                run.job.progress = progress
                announce_progress(run.job)
        # The beat also renews the provider slots the running jobs hold (jobs.quota).
        by_provider: dict[str, list[int]] = {}
        for run in runs:
            by_provider.setdefault(run.job.provider, []).append(run.job.pk)
        for provider, job_ids in by_provider.items():
            quota.renew(provider, job_ids)


_monitor: HeartbeatMonitor | None = None
_monitor_lock = threading.Lock()


def monitor() -> HeartbeatMonitor:
    """This process's monitor (a forked child gets a fresh one: threads do not survive fork)."""
    global _monitor
    with _monitor_lock:
        if _monitor is None or _monitor.pid != os.getpid():
            _monitor = HeartbeatMonitor()
        return _monitor


def stop_monitor() -> None:
    """Stop this process's monitor and close its connection (tests, shutdown)."""
    global _monitor
    with _monitor_lock:
        current, _monitor = _monitor, None
    if current is not None and current.pid == os.getpid():
        current.stop()
