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
  shutdown (``SystemExit`` inside the job; the reaper takes the job).
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
