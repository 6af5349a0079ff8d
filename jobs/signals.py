"""What jobs announces. The bot subscribes (telegram_bot/receivers.py); jobs imports no interface.

Both are sent after the change they describe has committed.
- ``job_progress(sender=Job, job=..., progress=int)``: a processing job's progress moved (0-100).
- ``job_finished(sender=Job, job=...)``: the job is completed, failed or cancelled
  (``job.status``; on failure ``job.error`` is fit to show the customer).
"""
import django.dispatch

job_progress = django.dispatch.Signal()
job_finished = django.dispatch.Signal()
