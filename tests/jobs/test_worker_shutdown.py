"""SIGTERM to a worker mid-job: the job finishes, is charged once, and the worker exits cleanly."""
import os
import signal

import pytest

from billing.models import Transfer, TransferKind
from billing.selectors import find_drift, get_balance, get_held
from jobs import services
from jobs.models import Job, JobStatus
from tests.helpers import make_customer, wait_until

from .conftest import start_worker

pytestmark = pytest.mark.django_db(transaction=True)


def test_sigterm_mid_job_lets_the_job_finish_charged_once_and_nothing_is_lost(clean_queues):
    customer = make_customer(balance=10_000)
    running = services.submit_job(customer=customer, kind="image", prompt="finish me first")
    waiting = services.submit_job(customer=customer, kind="image", prompt="left for the next worker")
    worker = start_worker("images", FAKE_PROVIDER_LATENCY=2)
    try:
        wait_until(lambda: Job.objects.filter(status=JobStatus.PROCESSING).exists(), timeout=30,
                   message="a job to start")
        os.killpg(worker.pid, signal.SIGTERM)  # warm shutdown: finish the job in hand, take no other
        assert worker.wait(timeout=60) == 0
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        output = worker.communicate(timeout=10)[0].decode(errors="replace")
    first, second = (Job.objects.get(pk=j.pk) for j in (running, waiting))
    done, left = (first, second) if first.status == JobStatus.COMPLETED else (second, first)
    assert done.status == JobStatus.COMPLETED, output
    assert left.status == JobStatus.PENDING  # still queued for the next worker, still reserved
    assert Transfer.objects.filter(kind=TransferKind.POST).count() == 1
    assert get_balance(customer) == 10_000 - done.cost_actual - left.cost_estimate
    assert get_held(customer) == left.cost_estimate
    assert find_drift() == []

    restarted = start_worker("images", burst=True)
    assert restarted.wait(timeout=60) == 0
    left.refresh_from_db()
    assert left.status == JobStatus.COMPLETED
    assert Transfer.objects.filter(kind=TransferKind.POST).count() == 2
    assert find_drift() == []
