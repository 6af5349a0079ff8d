"""Every write to jobs goes through here: ``from jobs import services; services.submit_job(...)``.

A job's status only moves by conditional UPDATEs (``WHERE status IN (...)``); whoever changes
the row also moves its money in the same durable transaction (charge on completion, release on
failure or cancel), so a status and its money commit together and two actors never both win.
Queue messages are sent with ``transaction.on_commit``; ``job_finished`` is sent inside the
transaction that finishes the job, so what its receivers write (the bot's messages) commits
with the new status or not at all.

By topic: ``submit`` (check, quote, submit, cancel, retry), ``workflow`` (what a worker does with
a job: a provider slot, claim, provider call, store, charge or refund, announce), ``polling``
(a provider task followed by short polls), ``recovery`` (the reaper, lost queue messages, old
files).
"""
from .polling import callback_token, callback_url, external_id, job_id_from_callback, obtain_task, poll_job, poll_soon
from .recovery import STUCK_MESSAGE, ReapReport, cleanup_results, reap_stuck_jobs, resume_pending_jobs
from .submit import CheckedInput, cancel_job, check_job_input, quote_job, retry_job, submit_job
from .workflow import (
    INTERNAL_MESSAGE,
    announce_finished,
    build_request,
    claim_job,
    complete_job,
    delete_files,
    expire_job,
    fail_job,
    run_job,
    store_results,
)

__all__ = [
    "callback_token",
    "callback_url",
    "expire_job",
    "external_id",
    "job_id_from_callback",
    "obtain_task",
    "poll_job",
    "poll_soon",
    "INTERNAL_MESSAGE",
    "STUCK_MESSAGE",
    "CheckedInput",
    "ReapReport",
    "announce_finished",
    "build_request",
    "cancel_job",
    "check_job_input",
    "claim_job",
    "cleanup_results",
    "complete_job",
    "delete_files",
    "fail_job",
    "quote_job",
    "reap_stuck_jobs",
    "resume_pending_jobs",
    "retry_job",
    "run_job",
    "store_results",
    "submit_job",
]
