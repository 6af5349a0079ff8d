"""The RQ worker class of every genbot worker (``RQ["WORKER_CLASS"]``, ``--worker-class jobs.worker.JobWorker``).

It runs each job in the worker process itself, like RQ's ``SimpleWorker``: most jobs are short
(a picture call of seconds, and with the durable workflow many video polls of a few
milliseconds), and a fork per job would cost tens of milliseconds and a fresh database
connection each time. What the fork gave for free, this class does on purpose:

- **Database connections.** Django discards a broken connection only around a request, which a
  worker never serves, so one connection dropped by PostgreSQL (a failover, a restart,
  ``pg_terminate_backend``) used to fail every later job of the process. Each job is now
  bracketed by ``genbot.dbhygiene``: before it, expired, failed or unanswering connections are
  closed (one ``SELECT 1`` per job); after it, the same, and every connection is closed when the
  job failed. A job cut short by the outage itself is left ``processing`` and is picked up by
  ``reap_stuck_jobs`` once its heartbeat is stale; the worker goes on with the next job. The
  periodic tasks run as jobs of this class, so they get the same.
- **Time-outs** still work: RQ's death penalty is ``SIGALRM`` in the main thread, where the job
  runs, and raises ``JobTimeoutException`` inside it (``run_job`` fails and refunds the job).
- **SIGTERM (or SIGINT from ``rqworker-pool``)** is RQ's warm shutdown: the job in hand finishes,
  no other is taken, the process exits 0. A second signal more than a second later is a cold
  shutdown (``SystemExit`` inside the job; the reaper takes the job). Python runs signal handlers
  in the main thread only, and a signal the kernel gives another thread (RQ's pubsub thread, the
  heartbeat thread) wakes no wait of the main thread: those threads block the shutdown signals,
  and the main thread waits for a job at most ``DEQUEUE_TIMEOUT`` seconds at a time (RQ's 405 s
  wait kept an idle worker deaf to SIGTERM for minutes now and then).
- **Memory** is not given back between jobs as a dying horse would give it; the process stays
  at its high-water mark (see README "Workers").

Redis: a worker waiting for a job rides out a Redis restart (RQ retries the dequeue with
backoff). One that loses Redis while it finishes a job exits (RQ's loop quits on an unexpected
error); ``rqworker-pool`` starts a new one within a second, as systemd (``Restart=always``) and
``bin/run`` restart a pool that exits. The scheduler process (``enqueue_in``) dies with its
Redis connection; workers try to start it again at each maintenance pass, every
``JOB_WORKER_MAINTENANCE_INTERVAL`` seconds here instead of RQ's ten minutes.
"""
from __future__ import annotations

import ctypes
import faulthandler
import multiprocessing
import os
import signal
import sys

from django.conf import settings
from rq.job import Job as RQJob
from rq.queue import Queue
from rq.worker import SimpleWorker

from genbot import dbhygiene


PR_SET_PDEATHSIG = 1
SHUTDOWN_SIGNALS = {signal.SIGINT, signal.SIGTERM}
# Seconds the worker waits on Redis for a job before it looks around (RQ: worker_ttl - 15, 405 s).
DEQUEUE_TIMEOUT = 5


def stop_with_the_pool() -> None:
    """In a worker forked by ``rqworker-pool``: a warm shutdown when the pool dies (even by SIGKILL).

    Without it the workers of a killed pool live on as orphans that nobody stops, beside the
    workers of the pool started in its place. Linux only; elsewhere the service manager's
    process group does it.
    """
    parent = multiprocessing.parent_process()
    if parent is None or not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent.pid:  # the pool died before the line above
        os.kill(os.getpid(), signal.SIGTERM)


class JobWorker(SimpleWorker):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("maintenance_interval", settings.JOB_WORKER_MAINTENANCE_INTERVAL)
        super().__init__(*args, **kwargs)
        stop_with_the_pool()
        # `kill -USR1 <pid>` prints every thread's stack: what a stuck worker is waiting for.
        faulthandler.register(signal.SIGUSR1, all_threads=True)

    @property
    def dequeue_timeout(self) -> int:
        # A shutdown signal the kernel hands to another thread of this process interrupts no
        # system call of the main thread, which runs Python's handlers: the main thread must
        # come back from its wait for a job often enough to run them.
        return min(DEQUEUE_TIMEOUT, super().dequeue_timeout)

    def subscribe(self):
        # RQ's pubsub thread inherits the signal mask of the thread that starts it: with the
        # shutdown signals blocked there, the kernel hands them to the main thread.
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, SHUTDOWN_SIGNALS)
        try:
            super().subscribe()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)

    def perform_job(self, job: RQJob, queue: Queue) -> bool:
        dbhygiene.before_unit_of_work()
        succeeded = False
        try:
            succeeded = super().perform_job(job, queue)
            return succeeded
        finally:
            dbhygiene.after_unit_of_work(failed=not succeeded)

    def run_maintenance_tasks(self):
        # The pass may fork the scheduler process: a child must not share this one's database socket.
        dbhygiene.close_all_connections()
        super().run_maintenance_tasks()
