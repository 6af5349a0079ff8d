"""What jobs announces. The bot subscribes (telegram_bot/receivers.py); jobs imports no interface.

- ``job_progress(sender=Job, job=..., progress=int)``: a processing job's progress moved (0-100);
  sent after the heartbeat that recorded it committed.
- ``job_finished(sender=Job, job=...)``: the job is completed, failed or cancelled
  (``job.status``; on failure ``job.error`` is fit to show the customer). Sent INSIDE the
  transaction that finished the job (the transactional outbox): what a receiver writes to the
  database commits with the job's new status or not at all, so no announcement is lost between a
  commit and a crash. Receivers run in one savepoint; if one raises, the savepoint is rolled
  back (every receiver's writes with it) and the failure logged, and the job stays finished.
  A receiver with effects outside the database (a network call) must defer them with
  ``transaction.on_commit``.
"""
import logging

import django.dispatch

logger = logging.getLogger(__name__)

job_progress = django.dispatch.Signal()
job_finished = django.dispatch.Signal()


def announce_progress(job) -> None:
    """``job_progress`` for a change in the job's progress or place in line (not in a
    transaction); a failing receiver is logged, never raised into the worker."""
    for receiver, outcome in job_progress.send_robust(sender=type(job), job=job, progress=job.progress):
        if isinstance(outcome, Exception):
            logger.error("job %s: job_progress receiver %r failed", job.pk, receiver, exc_info=outcome)
