"""Real ``manage.py rqworker`` processes against this run's database and Redis."""
from __future__ import annotations

import os
import signal
import time

import django_rq
import pytest

from billing.models import Transfer, TransferKind
from billing.selectors import find_drift, get_balance, get_held
from jobs import queueing, services
from jobs.models import Job, JobStatus
from tests.helpers import make_customer

from tests.helpers import wait_until

from .conftest import start_worker

pytestmark = pytest.mark.django_db(transaction=True)


def stop(worker) -> str:
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGKILL)
    out, _ = worker.communicate(timeout=10)
    return out.decode(errors="replace")


def test_worker_process_runs_submitted_jobs_end_to_end(clean_queues):
    customer = make_customer(balance=100_000)
    jobs = [services.submit_job(customer=customer, kind=kind, prompt=f"real worker {kind}")
            for kind in ("image", "video_text")]
    worker = start_worker("images", "videos", "default", burst=True)
    try:
        assert worker.wait(timeout=60) == 0, stop(worker)
    finally:
        output = stop(worker)
    for job in jobs:
        job.refresh_from_db()
        assert job.status == JobStatus.COMPLETED, (job.error, output)
    assert jobs[1].result_mime == "video/mp4"
    assert get_balance(customer) == 100_000 - 1500 - 5000 and get_held(customer) == 0
    assert find_drift() == []


def test_the_same_job_delivered_twice_to_real_workers_is_charged_once(clean_queues):
    customer = make_customer(balance=10_000)
    job = services.submit_job(customer=customer, kind="image", prompt="at least once")
    queue = django_rq.get_queue("images")
    # A second message for the same job (a redelivery): RQ pushes its id onto the queue again.
    queue.connection.rpush(queue.key, queueing.rq_job_id(job.pk))
    workers = [start_worker("images", burst=True) for _ in range(2)]
    try:
        for worker in workers:
            worker.wait(timeout=60)
    finally:
        outputs = [stop(worker) for worker in workers]
    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETED and job.attempts == 1, outputs
    assert "skipped (a repeated delivery" in "".join(outputs)  # the second delivery did run
    assert Transfer.objects.filter(pending_id=job.reservation_id, kind=TransferKind.POST).count() == 1
    assert get_balance(customer) == 10_000 - 1500 and find_drift() == []


def test_a_picture_whose_worker_was_sigkilled_mid_call_is_tried_again_and_charged_once(clean_queues, settings):
    settings.JOB_MAX_ATTEMPTS = 2
    customer = make_customer(balance=10_000)
    job = services.submit_job(customer=customer, kind="image", prompt="the worker will die")
    worker = start_worker("images", FAKE_PROVIDER_LATENCY=60, JOB_HEARTBEAT_INTERVAL=0.2)
    try:
        wait_until(lambda: Job.objects.filter(pk=job.pk, status=JobStatus.PROCESSING, progress__gt=0).exists(),
                   timeout=60, message="the worker to start the job and beat")
        os.killpg(worker.pid, signal.SIGKILL)  # no clean-up of any kind
        worker.wait(timeout=10)
    finally:
        stop(worker)
    assert Job.objects.get(pk=job.pk).status == JobStatus.PROCESSING
    assert get_held(customer) == 1500
    settings.JOB_HEARTBEAT_TIMEOUT = 1
    time.sleep(1.2)
    assert services.reap_stuck_jobs().requeued == 1  # one attempt used of two: tried again
    assert Job.objects.get(pk=job.pk).status == JobStatus.PENDING and get_held(customer) == 1500
    worker = start_worker("images", burst=True, FAKE_PROVIDER_LATENCY=0)
    try:
        worker.wait(timeout=60)
    finally:
        stop(worker)
    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETED and job.attempts == 2
    assert Transfer.objects.filter(pending_id=job.reservation_id, kind=TransferKind.POST).count() == 1
    assert get_balance(customer) == 10_000 - 1500 and get_held(customer) == 0
    assert find_drift() == []


def test_run_jobs_fallback_picks_up_pending_jobs_without_redis_and_stops_on_sigterm(no_enqueue):
    import subprocess
    import sys

    from tests.helpers import free_port, subprocess_env

    from .conftest import ROOT

    customer = make_customer(balance=10_000)
    job = services.submit_job(customer=customer, kind="image", prompt="left behind by a dead process")
    assert no_enqueue  # nothing was really queued
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_jobs_fallback"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env=subprocess_env(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"), start_new_session=True,
    )
    try:
        wait_until(lambda: Job.objects.get(pk=job.pk).status == JobStatus.COMPLETED, timeout=60,
                   message="the fallback process to run the pending job")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        output = stop(process)
    assert "resumed 1 pending jobs" in output
    assert get_balance(customer) == 10_000 - 1500 and find_drift() == []


def test_a_live_worker_keeps_beating_so_the_reaper_leaves_its_job_alone(clean_queues, settings):
    customer = make_customer(balance=10_000)
    job = services.submit_job(customer=customer, kind="image", prompt="slow but alive")
    # A short reaper time-out makes the worker beat more often than JOB_HEARTBEAT_INTERVAL says.
    worker = start_worker("images", FAKE_PROVIDER_LATENCY=4, JOB_HEARTBEAT_TIMEOUT=2, JOB_HEARTBEAT_INTERVAL=30)
    try:
        wait_until(lambda: Job.objects.filter(pk=job.pk, status=JobStatus.PROCESSING).exists(), timeout=60,
                   message="the worker to start the job")
        settings.JOB_HEARTBEAT_TIMEOUT = 2
        for _ in range(5):
            time.sleep(0.5)
            assert services.reap_stuck_jobs().failed == 0
        wait_until(lambda: Job.objects.get(pk=job.pk).status == JobStatus.COMPLETED, timeout=30, message="completion")
    finally:
        stop(worker)
    assert get_balance(customer) == 10_000 - 1500 and find_drift() == []
