"""Functions the workers run (RQ, or the in-process pool without Redis).

``run_job`` is idempotent: RQ runs a job at least once, and the claim (a conditional UPDATE
from pending) lets only the first delivery work; charging is keyed by the reservation.
"""
from __future__ import annotations

import logging

from django.core.files.storage import default_storage

from genbot import logcontext

from . import services
from .heartbeat import RunningJob, monitor
from .media import media_info
from .models import Job
from .providers.base import GenerationRequest, JobCancelled, ProviderError
from .providers.registry import get_provider

logger = logging.getLogger(__name__)


def build_request(job: Job) -> GenerationRequest:
    image = None
    if job.input_file:
        with default_storage.open(job.input_file.name, "rb") as handle:
            image = handle.read()
    options = job.options or {}
    return GenerationRequest(
        kind=job.kind, prompt=job.prompt, input_image=image, input_mime=job.input_mime,
        aspect_ratio=options.get("aspect_ratio", ""), duration=int(options.get("duration") or 5),
        mode=options.get("mode") or "std",
    )


def run_job(job_id: int) -> str:
    """Generate one job: claim, call the provider with retries, store, charge, announce.

    Returns what happened ("completed", "failed", "cancelled", "skipped"), for logs and tests.
    Any failure refunds and leaves a message fit for the customer on the job.
    """
    with logcontext.bind(job_id=job_id):
        return _run_job(job_id)


def _run_job(job_id: int) -> str:
    job = services.claim_job(job_id=job_id)
    if job is None:
        logger.info("job %s is not pending: skipped (a repeated delivery)", job_id)
        return "skipped"
    run = RunningJob(job)
    beats = monitor()
    beats.add(run)
    stored: list[str] = []
    try:
        result = get_provider(job.provider).generate_with_retry(build_request(job), run)
        run.check_cancelled()
        info = [media_info(item.content, item.mime_type) for item in result.media]
        stored = services.store_results(job=job, media=result.media)
        completed = services.complete_job(
            job=job, result_files=stored, result_mime=result.media[0].mime_type, cost=result.cost, result_info=info,
        )
        if completed:
            return "completed"
        # Cancelled or reaped while the result was being stored: it was not charged.
        services.delete_files(stored)
        return "cancelled"
    except JobCancelled:
        logger.info("job %s was cancelled while running: stopped without charging", job_id)
        return "cancelled"
    except ProviderError as exc:
        logger.warning("job %s failed: %s %s", job_id, exc.code, exc)
        services.fail_job(job=job, error_code=exc.code, message=exc.user_message)
        return "failed"
    except Exception:  # noqa: BLE001 - any bug (or RQ's job time-out) still refunds the customer
        logger.exception("job %s crashed", job_id)
        services.delete_files(stored)
        services.fail_job(job=job, error_code="internal", message=services.INTERNAL_MESSAGE)
        return "failed"
    finally:
        beats.remove(run)


def reap_stuck_jobs_task() -> dict:
    report = services.reap_stuck_jobs()
    return {"failed": report.failed, "requeued": report.requeued}


def cleanup_results_task() -> int:
    return services.cleanup_results()
