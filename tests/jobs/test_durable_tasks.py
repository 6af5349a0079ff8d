"""Issue 13: a provider task is created once per job and survives everything; quotas; callbacks.

Real Redis, the Kling and Gemini stubs over HTTP, and real worker processes where a kill matters.
"""
from __future__ import annotations

import json
import os
import signal
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from billing.models import Transfer, TransferKind
from billing.selectors import find_drift, get_balance, get_held
from jobs import quota, services, tasks
from jobs.models import Job, JobStatus
from jobs.providers.base import ProviderError
from standins.gemini import GeminiStub
from standins.kling import KlingStub
from tests.helpers import make_customer, wait_until

from .conftest import start_worker
from .test_workers import stop

pytestmark = pytest.mark.django_db

@pytest.fixture
def kling(settings):
    """The Kling stub with tasks that take a second, and the product pointed at it."""
    with KlingStub(task_seconds=1.0, slow_seconds=3.0) as stub:
        settings.AI_PROVIDER = "real"
        settings.KLING_API_KEY = f"{stub.access_key}:{stub.secret_key}"
        settings.KLING_API_URL = stub.url
        settings.KLING_FIRST_POLL, settings.KLING_POLL_INTERVAL = 0.2, 0.3
        settings.MAX_ACTIVE_JOBS_PER_CUSTOMER = 20
        yield stub


def kling_env(stub, **extra) -> dict:
    return {"AI_PROVIDER": "real", "KLING_API_KEY": f"{stub.access_key}:{stub.secret_key}", "KLING_API_URL": stub.url,
            "KLING_FIRST_POLL": 0.2, "KLING_POLL_INTERVAL": 0.3, **extra}


def charges(job: Job) -> int:
    return Transfer.objects.filter(pending_id=job.reservation_id, kind=TransferKind.POST).count()


def video(customer, prompt="waves") -> Job:
    return services.submit_job(customer=customer, kind="video_text", prompt=prompt, duration=5)


# --- one task per job --------------------------------------------------------------------------


def test_a_video_is_created_once_with_its_external_id_and_followed_by_polls(kling, drive):
    customer = make_customer(balance=100_000)
    job = video(customer)
    assert drive(job.pk) == "completed"
    job.refresh_from_db()
    stats = kling.stats()
    assert stats["tasks_created"] == 1 and stats["polls"] >= 1
    [create] = [r for r in kling.requests if r["method"] == "POST"]
    assert create["body"]["external_task_id"] == services.external_id(job) == f"genbot-{job.pk}"
    assert job.provider_task_id and job.status == JobStatus.COMPLETED and charges(job) == 1
    assert get_balance(customer) == 100_000 - job.cost_actual and find_drift() == []


def test_a_run_that_died_after_the_create_finds_its_task_by_the_external_id(kling, drive, settings):
    """The create reached Kling, the worker never recorded the answer: the next run looks first."""
    customer = make_customer(balance=100_000)
    job = video(customer)
    kling.script("slow_create")  # made at once, answered 3 s later
    settings.AI_HTTP_TIMEOUT = 0.5
    claimed = services.claim_job(job_id=job.pk)
    with pytest.raises(ProviderError) as raised:  # the dead run's create, as far as it got
        tasks_provider().create_task(services.build_request(claimed), external_id=services.external_id(job))
    assert raised.value.retryable and kling.stats()["tasks_created"] == 1
    settings.AI_HTTP_TIMEOUT = 10
    Job.objects.filter(pk=job.pk).update(status=JobStatus.PENDING)  # as the reaper puts it back
    assert drive(job.pk) == "completed"
    job.refresh_from_db()
    assert kling.stats()["tasks_created"] == 1 and job.attempts == 2 and charges(job) == 1
    assert find_drift() == []


def test_a_create_that_timed_out_is_found_by_the_retry_not_made_twice(kling, settings):
    customer = make_customer(balance=100_000)
    job = video(customer)
    kling.script("slow_create")
    settings.AI_HTTP_TIMEOUT = 0.5
    claimed = services.claim_job(job_id=job.pk)
    task_id = services.obtain_task(job=claimed, provider=tasks_provider())
    assert kling.stats()["tasks_created"] == 1 and kling.tasks[task_id].external_task_id == f"genbot-{job.pk}"


def tasks_provider():
    from jobs.providers.registry import get_provider

    return get_provider("kling")


@pytest.mark.django_db(transaction=True)
def test_a_video_survives_sigkill_of_its_worker_between_create_and_record(kling, clean_queues, settings):
    customer = make_customer(balance=100_000)
    kling.script("slow_create")
    job = video(customer)
    worker = start_worker("videos", scheduler=True, **kling_env(kling))
    try:
        wait_until(lambda: kling.stats()["tasks_created"] == 1, timeout=60, message="the task created at Kling")
        os.killpg(worker.pid, signal.SIGKILL)  # the answer never reaches a worker
        worker.wait(timeout=10)
    finally:
        stop(worker)
    job.refresh_from_db()
    assert job.status == JobStatus.PROCESSING and not job.provider_task_id
    settings.JOB_HEARTBEAT_TIMEOUT, settings.JOB_REQUEUE_AFTER = 1, 1
    time.sleep(1.1)
    assert services.reap_stuck_jobs().requeued == 1
    worker = start_worker("videos", scheduler=True, **kling_env(kling))
    try:
        # The dead worker's scheduler lock outlives it: its polls come from the reaper meanwhile.
        def completed() -> bool:
            services.reap_stuck_jobs()
            return Job.objects.get(pk=job.pk).status == JobStatus.COMPLETED

        wait_until(completed, timeout=60, interval=0.5, message="the video completed by the new worker")
    finally:
        stop(worker)
    job.refresh_from_db()
    assert kling.stats()["tasks_created"] == 1 and kling.stats()["duplicate_external_ids"] == 0
    assert charges(job) == 1 and job.attempts == 2 and get_held(customer) == 0 and find_drift() == []


@pytest.mark.django_db(transaction=True)
def test_videos_survive_sigkill_of_every_worker_between_polls(kling, clean_queues, settings):
    """After a SIGKILL RQ's scheduler lock outlives the worker: the reaper resumes overdue polls."""
    kling.task_seconds = 4.0
    settings.JOB_REQUEUE_AFTER = 1
    customer = make_customer(balance=100_000)
    jobs = [video(customer, f"v{i}") for i in range(3)]
    workers = [start_worker("videos", scheduler=True, **kling_env(kling)) for _ in range(2)]
    try:
        wait_until(lambda: Job.objects.filter(pk__in=[j.pk for j in jobs]).exclude(provider_task_id="").count() == 3,
                   timeout=60, message="three tasks recorded")
        for worker in workers:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
    finally:
        for worker in workers:
            stop(worker)
    assert Job.objects.filter(pk__in=[j.pk for j in jobs], status=JobStatus.PROCESSING).count() == 3
    workers = [start_worker("videos", **kling_env(kling))]  # no scheduler: only the reaper resumes them
    try:
        def all_done() -> bool:
            services.reap_stuck_jobs()
            return Job.objects.filter(pk__in=[j.pk for j in jobs], status=JobStatus.COMPLETED).count() == 3

        wait_until(all_done, timeout=60, interval=0.5, message="every video completed")
    finally:
        for worker in workers:
            stop(worker)
    assert kling.stats()["tasks_created"] == 3
    assert [charges(Job.objects.get(pk=j.pk)) for j in jobs] == [1, 1, 1]
    assert get_held(customer) == 0 and find_drift() == []


# --- quotas ------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_quota_of_three_runs_ten_videos_never_more_than_three_at_once(kling, clean_queues, settings):
    settings.KLING_MAX_CONCURRENT_TASKS = 3
    customer = make_customer(balance=1_000_000)
    jobs = [video(customer, f"v{i}") for i in range(10)]
    env = kling_env(kling, KLING_MAX_CONCURRENT_TASKS=3)
    workers = [start_worker("videos", scheduler=(i == 0), **env) for i in range(2)]
    try:
        wait_until(lambda: Job.objects.filter(pk__in=[j.pk for j in jobs], status=JobStatus.COMPLETED).count() == 10,
                   timeout=120, interval=0.2, message="all ten videos")
    finally:
        for worker in workers:
            stop(worker)
    stats = kling.stats()
    assert stats["max_in_flight"] == 3 and stats["tasks_created"] == 10 and stats["refused_parallel"] == 0
    assert all(charges(Job.objects.get(pk=j.pk)) == 1 for j in jobs) and find_drift() == []


def test_jobs_over_the_quota_wait_in_line_first_come_first_served(settings):
    settings.KLING_MAX_CONCURRENT_TASKS = 2
    assert quota.acquire("kling", 11).granted and quota.acquire("kling", 12).granted
    assert quota.acquire("kling", 15).position == 1
    waiting = [quota.acquire("kling", job_id) for job_id in (13, 14, 15)]
    assert [t.position for t in waiting] == [1, 2, 3]  # by submit order (the job id), not by asking
    assert all(not t.granted and t.eta_seconds > 0 for t in waiting)
    assert quota.release("kling", 11) == [13]  # the first in line is woken
    assert not quota.acquire("kling", 14).granted  # not its turn: 13 is ahead
    assert quota.acquire("kling", 13).granted
    assert quota.acquire("kling", 12).granted and not quota.acquire("kling", 12).fresh  # a renewal
    assert sorted(quota.holders("kling")) == [12, 13]


def test_the_slot_of_a_killed_worker_comes_back_when_its_lease_ends(settings):
    settings.GEMINI_MAX_CONCURRENT, settings.JOB_QUOTA_LEASE = 1, 1
    assert quota.acquire("gemini", 21).granted  # and then its worker is SIGKILLed: no release
    assert quota.acquire("gemini", 22).position == 1
    time.sleep(1.1)
    assert quota.acquire("gemini", 22).granted and quota.holders("gemini") == [22]


@pytest.mark.django_db(transaction=True)
def test_a_sigkilled_picture_worker_gives_its_slot_back_after_the_lease(clean_queues, settings):
    with GeminiStub(latency=60) as gemini:
        settings.AI_PROVIDER, settings.NANO_BANANA_API_KEY, settings.GEMINI_API_URL = "real", gemini.api_key, gemini.url
        settings.GEMINI_MAX_CONCURRENT, settings.JOB_QUOTA_LEASE = 1, 2
        customer = make_customer(balance=100_000)
        first = services.submit_job(customer=customer, kind="image", prompt="dies")
        worker = start_worker("images", AI_PROVIDER="real", NANO_BANANA_API_KEY=gemini.api_key,
                              GEMINI_API_URL=gemini.url, GEMINI_MAX_CONCURRENT=1, JOB_QUOTA_LEASE=2,
                              JOB_HEARTBEAT_INTERVAL=0.2)
        try:
            wait_until(lambda: gemini.stats()["concurrent"] == 1, timeout=60, message="the first call at Gemini")
            assert quota.holders("gemini") == [first.pk]
            os.killpg(worker.pid, signal.SIGKILL)  # mid-call: nothing releases the slot
            worker.wait(timeout=10)
        finally:
            stop(worker)
        second = services.submit_job(customer=customer, kind="image", prompt="waits")
        assert tasks.run_job(second.pk) == "waiting"
        assert Job.objects.get(pk=second.pk).queue_position == 1
        wait_until(lambda: quota.holders("gemini") == [], timeout=10, message="the dead worker's lease to end")
        assert quota.acquire("gemini", second.pk).granted


def test_a_1303_puts_the_video_back_in_line_without_using_an_attempt(kling, drive):
    kling.script("concurrency_limit")
    customer = make_customer(balance=100_000)
    job = video(customer)
    assert tasks.run_job(job.pk) == "requeued"
    job.refresh_from_db()
    assert job.status == JobStatus.PENDING and job.attempts == 0 and get_held(customer) == job.cost_estimate
    assert quota.holders("kling") == []
    [(what, job_id, due_ms)] = drive.scheduled
    assert (what, job_id) == ("try", job.pk)
    drive.scheduled.clear()
    assert drive(job.pk) == "completed"
    assert Job.objects.get(pk=job.pk).attempts == 1 and kling.stats()["tasks_created"] == 1


def test_a_job_that_never_gets_a_slot_is_refunded_after_the_queue_time_out(kling, drive, settings, english):
    settings.KLING_MAX_CONCURRENT_TASKS, settings.JOB_QUEUE_TIMEOUT = 1, 60
    customer = make_customer(balance=100_000, language="en")
    busy, late = video(customer, "first"), video(customer, "second")
    assert quota.acquire("kling", busy.pk).granted  # the slot stays taken
    assert tasks.run_job(late.pk) == "waiting"
    late.refresh_from_db()
    assert late.status == JobStatus.PENDING and late.queue_position == 1 and late.queue_eta > 0
    Job.objects.filter(pk=late.pk).update(created_at=timezone.now() - timedelta(seconds=61))
    assert services.reap_stuck_jobs().expired == 1
    late.refresh_from_db()
    assert late.status == JobStatus.FAILED and late.error_code == "queue_timeout" and "too busy" in late.error
    assert get_held(customer) == busy.cost_estimate and find_drift() == []


# --- callbacks ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_kling_s_callback_completes_the_video_without_waiting_for_a_poll(kling, drive, settings, live_server):
    settings.PUBLIC_BASE_URL = live_server.url
    settings.KLING_FIRST_POLL = settings.KLING_POLL_INTERVAL = 600  # no poll would come in time
    customer = make_customer(balance=100_000)
    job = video(customer)
    assert tasks.run_job(job.pk) == "polling"
    # The scheduled poll (the callbacks of the first status changes may already have asked for more).
    [(what, _job_id, due_ms)] = [run for run in drive.scheduled if run[2] is not None]
    assert what == "poll"
    create = [r for r in kling.requests if r["method"] == "POST"][0]["body"]
    assert create["callback_url"] == services.callback_url(job) and create["callback_url"].startswith(live_server.url)
    # Kling POSTs on each status change; the last one (succeed) makes the bot poll at once.
    wait_until(lambda: kling.stats()["callbacks_sent"] >= 3, timeout=30, message="the callbacks")
    immediate = [run for run in drive.scheduled if run[2] is None]
    assert immediate, drive.scheduled
    drive.scheduled.clear()
    assert tasks.poll_job(job.pk) == "completed"
    assert tasks.poll_job(job.pk, due_ms) == "skipped"  # the scheduled poll, when it comes
    assert charges(Job.objects.get(pk=job.pk)) == 1 and find_drift() == []


def test_a_callback_saying_the_task_still_runs_asks_for_no_poll(kling, drive, client):
    # Kling calls on submitted and processing too: polling then would learn nothing.
    customer = make_customer(balance=100_000)
    job = video(customer)
    kling.task_seconds = 600
    assert tasks.run_job(job.pk) == "polling"
    drive.scheduled.clear()
    url = f"/webhook/kling/{services.callback_token(job)}"
    for status in ("submitted", "processing"):
        answer = client.post(url, data=json.dumps({"task_id": "1", "task_status": status}), content_type="application/json")
        assert answer.status_code == 200 and answer.json() == {"ok": True, "polled": False}
    assert drive.scheduled == []
    # A body that says nothing readable is no reason to skip the look.
    for body in ("not json", "[]", json.dumps({"task_status": ["processing"]})):
        assert client.post(url, data=body, content_type="application/json").json()["polled"] is True
    assert [what for what, _job, due_ms in drive.scheduled] == ["poll"] * 3


def test_a_forged_callback_body_changes_nothing(kling, drive, client):
    customer = make_customer(balance=100_000)
    job = video(customer)
    kling.task_seconds = 600  # still processing at Kling
    assert tasks.run_job(job.pk) == "polling"
    drive.scheduled.clear()
    forged = {"task_id": "1", "task_status": "succeed",
              "task_result": {"videos": [{"id": "x", "url": "https://evil.example/v.mp4"}]}}
    answer = client.post(f"/webhook/kling/{services.callback_token(job)}", data=json.dumps(forged),
                         content_type="application/json")
    assert answer.status_code == 200
    [(what, job_id, due_ms)] = drive.scheduled
    assert (what, job_id, due_ms) == ("poll", job.pk, None)  # it only asked for a poll...
    drive.scheduled.clear()
    assert tasks.poll_job(job.pk) == "polling"  # ...and Kling itself says it is still running
    job.refresh_from_db()
    assert job.status == JobStatus.PROCESSING and not job.result_files and get_held(customer) == job.cost_estimate
    scheduled = list(drive.scheduled)
    assert client.post(f"/webhook/kling/{job.pk}:forged", data="{}", content_type="application/json").status_code == 404
    assert client.post("/webhook/kling/anything", data="{}", content_type="application/json").status_code == 404
    assert drive.scheduled == scheduled  # the bad tokens asked for nothing


def test_with_callbacks_a_task_s_polls_are_a_rare_safety_net(settings):
    from jobs.services.polling import next_poll_delay

    settings.KLING_FIRST_POLL, settings.KLING_POLL_INTERVAL, settings.KLING_CALLBACK_POLL_INTERVAL = 3, 10, 60
    settings.PUBLIC_BASE_URL = ""
    assert 2.7 <= next_poll_delay(0) <= 3.3 and 9 <= next_poll_delay(300) <= 11  # soon, backing off
    settings.PUBLIC_BASE_URL = "https://genbot.example.com"
    delays = {round(next_poll_delay(elapsed), 3) for elapsed in (0, 10, 300) for _ in range(5)}
    assert all(54 <= delay <= 66 for delay in delays) and len(delays) > 1  # jittered: no waves
