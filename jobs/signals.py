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
import django.dispatch

job_progress = django.dispatch.Signal()
job_finished = django.dispatch.Signal()
