"""The functions the workers run, by dotted path (RQ, the in-process pool, ``PERIODIC_TASKS``).

Entry points only: each binds the log context and calls one service; the workflow of a job is
``services.workflow.run_job``.
"""
from __future__ import annotations

from genbot import logcontext

from . import services


def run_job(job_id: int, due_ms: int | None = None) -> str:
    """A try at one job (see ``services.run_job``); returns what happened, for logs and tests."""
    with logcontext.bind(job_id=job_id):
        return services.run_job(job_id=job_id, due_ms=due_ms)


def poll_job(job_id: int, due_ms: int | None = None) -> str:
    """One poll of a job's provider task (see ``services.poll_job``)."""
    with logcontext.bind(job_id=job_id):
        return services.poll_job(job_id=job_id, due_ms=due_ms)


def reap_stuck_jobs_task() -> dict:
    report = services.reap_stuck_jobs()
    return {"failed": report.failed, "requeued": report.requeued, "resumed": report.resumed, "expired": report.expired}


def cleanup_results_task() -> int:
    return services.cleanup_results()
