"""Queueing: RQ when Redis answers; a bounded in-process pool when it does not; resume after restart."""
from __future__ import annotations

import ast
import threading
import time
from pathlib import Path

import django_rq
import pytest

from billing.selectors import find_drift, get_balance
from jobs import queueing, services
from jobs.models import Job, JobStatus
from jobs.signals import job_finished
from tests.helpers import make_customer

from tests.helpers import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def test_submit_with_redis_up_puts_one_message_on_the_right_queue(clean_queues):
    customer = make_customer(balance=100_000)
    image = services.submit_job(customer=customer, kind="image", prompt="to the images queue")
    video = services.submit_job(customer=customer, kind="video_text", prompt="to the videos queue")
    images, videos = django_rq.get_queue("images"), django_rq.get_queue("videos")
    assert images.job_ids == [queueing.rq_job_id(image.pk)]
    assert videos.job_ids == [queueing.rq_job_id(video.pk)]
    rq_job = images.fetch_job(queueing.rq_job_id(image.pk))
    assert rq_job.func_name == "jobs.tasks.run_job" and rq_job.args == (image.pk,)
    assert queueing.has_live_message(image.pk, "image")
    images.empty()
    assert not queueing.has_live_message(image.pk, "image")


def test_redis_down_runs_the_job_in_the_pool_never_in_the_callers_thread(redis_down):
    customer = make_customer(balance=10_000)
    ran_in: list[str] = []

    def on_finished(sender, job, **kwargs):
        ran_in.append(threading.current_thread().name)

    job_finished.connect(on_finished, weak=False, dispatch_uid="test-pool-thread")
    try:
        started = time.monotonic()
        job = services.submit_job(customer=customer, kind="image", prompt="no redis")
        assert time.monotonic() - started < 2  # the dead Redis costs one short ping, not a hang
        wait_until(lambda: Job.objects.get(pk=job.pk).status == JobStatus.COMPLETED, message="pool run")
        wait_until(lambda: ran_in, message="announcement")
    finally:
        job_finished.disconnect(dispatch_uid="test-pool-thread")
    assert ran_in[0].startswith("genbot-job") and ran_in[0] != threading.current_thread().name
    assert get_balance(customer) == 10_000 - 1500 and find_drift() == []


def test_redis_health_is_cached_so_a_dead_redis_is_pinged_once_per_interval(redis_down, monkeypatch, settings):
    settings.JOB_REDIS_CHECK_INTERVAL = 60
    pings = []
    real = queueing.redis_connection

    def counting(name="default"):
        conn = real(name)
        original = conn.ping
        conn.ping = lambda: pings.append(1) or original()
        return conn

    monkeypatch.setattr(queueing, "redis_connection", counting)
    assert [queueing.redis_available("images") for _ in range(5)] == [False] * 5
    assert len(pings) == 1


def test_the_fallback_pool_is_bounded(redis_down, settings, monkeypatch):
    settings.JOB_FALLBACK_THREADS = 2
    settings.MAX_ACTIVE_JOBS_PER_CUSTOMER = 10
    settings.FAKE_PROVIDER_LATENCY = 0.3
    running, peak = set(), []
    from jobs import tasks

    real_run = tasks.run_job

    def tracking(job_id, due_ms=None):
        running.add(job_id)
        peak.append(len(running))
        try:
            return real_run(job_id, due_ms)
        finally:
            running.discard(job_id)

    monkeypatch.setattr(tasks, "run_job", tracking)
    customer = make_customer(balance=100_000)
    jobs = [services.submit_job(customer=customer, kind="image", prompt=f"p{i}") for i in range(5)]
    wait_until(lambda: Job.objects.filter(pk__in=[j.pk for j in jobs], status=JobStatus.COMPLETED).count() == 5,
               message="all five")
    assert max(peak) == 2


POOL_RAN: list[int] = []


def record_pool_run(job_id: int, due_ms: int | None = None) -> None:
    """Stands for the task in the test below: the pool must find it by ``TASK_PATH``."""
    POOL_RAN.append(job_id)


def test_the_fallback_pool_runs_the_task_by_its_dotted_path_as_rq_does(monkeypatch):
    POOL_RAN.clear()
    monkeypatch.setattr(queueing, "TASK_PATH", f"{__name__}.record_pool_run")
    queueing.submit_to_fallback(987_654).result(timeout=10)
    assert POOL_RAN == [987_654]


def test_the_queue_imports_neither_the_task_nor_the_services():
    """No cycle services -> queueing -> tasks -> services, not even inside a function."""
    tree = ast.parse(Path(queueing.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = ("jobs." if node.level else "") + (node.module or "")
            imported.update({module.rstrip(".")} | {f"{module}.{alias.name}".replace("..", ".") for alias in node.names})
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    assert not {name for name in imported if name.startswith(("jobs.tasks", "jobs.services"))}


def test_pending_jobs_are_picked_up_again_after_a_restart(redis_down, no_enqueue, monkeypatch):
    customer = make_customer(balance=10_000)
    job = services.submit_job(customer=customer, kind="image", prompt="the process died before running me")
    assert no_enqueue == [(job.pk, "image")]  # the message went nowhere: the process "died"
    monkeypatch.undo()  # a new process: the real enqueue again
    assert services.resume_pending_jobs() == 1
    wait_until(lambda: Job.objects.get(pk=job.pk).status == JobStatus.COMPLETED, message="resumed job")
    assert get_balance(customer) == 10_000 - 1500 and find_drift() == []


def test_a_redis_client_failing_mid_handshake_counts_as_redis_down(monkeypatch):
    """redis-py's AttributeError from a half-open connection is survived like any RedisError."""

    class HalfOpen:
        def ping(self):
            raise AttributeError("'NoneType' object has no attribute 'readline'")

    queueing.forget_redis_health()
    monkeypatch.setattr(queueing, "redis_connection", lambda queue_name="default": HalfOpen())
    try:
        assert queueing.redis_available("images") is False
        assert queueing.has_live_message(10**9, "image") is False
    finally:
        queueing.forget_redis_health()
