"""Real workers whose backends fail: PostgreSQL drops their connections, their Redis restarts."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import django_rq
import pytest
import redis
from django.db import connection

from billing.selectors import find_drift, get_held
from jobs import queueing, services
from jobs.models import Job, JobStatus
from tests.helpers import free_port, make_customer, postgres_only, subprocess_env, wait_until

from .conftest import ROOT, start_worker

pytestmark = pytest.mark.django_db(transaction=True)


def output_of(process: subprocess.Popen) -> str:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    return (process.communicate(timeout=10)[0] or b"").decode(errors="replace")


def start_pool(log, *queues: str, workers: int = 2, **env) -> subprocess.Popen:
    """``manage.py rqworker-pool`` as deployed; its output to the file ``log`` (a pipe would fill up)."""
    return subprocess.Popen(
        [sys.executable, "manage.py", "rqworker-pool", *queues, "--num-workers", str(workers)],
        cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True, env=subprocess_env(**env),
    )


def stop_gracefully(process: subprocess.Popen, timeout: float = 30) -> bool:
    """SIGTERM to the process group, as systemd sends; did it exit 0 in time?"""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    try:
        return process.wait(timeout=timeout) == 0
    except subprocess.TimeoutExpired:
        return False


def terminate_other_backends() -> int:
    """What a failover does to every client: their server processes end (not ours, not the server)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def completed(job) -> bool:
    return Job.objects.get(pk=job.pk).status == JobStatus.COMPLETED


def reaped(job) -> bool:
    """One reaper pass; has the job ended (failed and refunded, or retried and completed)?"""
    services.reap_stuck_jobs()
    return Job.objects.get(pk=job.pk).status in JobStatus.finished()


@postgres_only
def test_a_worker_whose_database_connections_are_terminated_goes_on_with_the_next_jobs(clean_queues, settings):
    customer = make_customer(balance=100_000)
    worker = start_worker("images", FAKE_PROVIDER_LATENCY=1.5, JOB_HEARTBEAT_INTERVAL=0.2)
    try:
        # Mid-job: the worker's connections die while the provider is working.
        interrupted = services.submit_job(customer=customer, kind="image", prompt="cut short by a failover")
        wait_until(lambda: Job.objects.filter(pk=interrupted.pk, status=JobStatus.PROCESSING).exists(),
                   timeout=60, message="the worker to claim the job")
        assert terminate_other_backends() >= 1
        later = [services.submit_job(customer=customer, kind="image", prompt=f"after the failover {i}") for i in range(2)]
        wait_until(lambda: all(completed(job) for job in later), timeout=60, message="the later jobs to complete")

        # While idle: the dead connection shows no error until the next job's first query.
        assert terminate_other_backends() >= 1
        after_idle = services.submit_job(customer=customer, kind="image", prompt="after an idle failover")
        wait_until(lambda: completed(after_idle), timeout=30, message="the first job after an idle failover")
        assert worker.poll() is None  # the same process all along: no restart was needed

        # The interrupted job is not left stuck: the reaper takes it once its heartbeat is stale.
        settings.JOB_HEARTBEAT_TIMEOUT = 1
        wait_until(lambda: reaped(interrupted), timeout=60, interval=0.5, message="the reaper to finish the interrupted job")
    finally:
        output = output_of(worker)
    wait_until(lambda: get_held(customer) == 0, timeout=30, message="no money held")



@postgres_only
def test_periodic_tasks_without_redis_survive_a_dropped_connection():
    """The loop of run_jobs_fallback / run_periodic calls the reaper in its own thread."""
    from django.db import connections

    from jobs import periodic

    calls = []

    def count_jobs():
        calls.append(Job.objects.count())

    tasks = [periodic.PeriodicTask(path="count_jobs", queue="default", schedule=1, func=count_jobs)]
    periodic.run_due(tasks)
    # The connection breaks behind Django's back, as when the server goes away.
    connections["default"].connection.close()
    tasks[0].next_run = 0.0
    periodic.run_due(tasks)
    assert calls == [0, 0]


class PrivateRedis:
    """A redis-server of this test's own on a free port, to kill and start again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        client = redis.Redis.from_url(self.url)
        wait_until(lambda: self._answers(client), timeout=10, message="the private redis-server")

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)

    @staticmethod
    def _answers(client) -> bool:
        try:
            return client.ping()
        except redis.RedisError:
            return False


@pytest.fixture
def private_redis(settings):
    server = PrivateRedis()
    server.start()
    settings.RQ_QUEUES = {name: {**conf, "URL": server.url} for name, conf in settings.RQ_QUEUES.items()}
    queueing.forget_redis_health()
    yield server
    server.kill()
    queueing.forget_redis_health()


def test_a_worker_pool_whose_redis_restarts_takes_jobs_again(private_redis, monkeypatch, tmp_path):
    customer = make_customer(balance=100_000)
    log = tmp_path / "pool.log"
    pool = start_pool(log, "images", "videos", "default", REDIS_URL=private_redis.url, FAKE_PROVIDER_LATENCY=1,
                      JOB_WORKER_MAINTENANCE_INTERVAL=1)

    def restart_redis() -> None:
        private_redis.kill()  # with all its data: no save, no append-only file
        time.sleep(2)
        private_redis.start()
        queueing.forget_redis_health()

    try:
        first = services.submit_job(customer=customer, kind="image", prompt="before any restart")
        wait_until(lambda: completed(first), timeout=60, message="the first job")

        # While the workers wait for jobs: they ride it out, and the scheduler (enqueue_in),
        # which died with its connection, is started again at a maintenance pass.
        restart_redis()
        with monkeypatch.context() as patched:
            patched.setattr(queueing, "enqueue_job", lambda job_id, kind: "test")
            put_off = services.submit_job(customer=customer, kind="image", prompt="put off")
        queue = django_rq.get_queue("images", connection=queueing.redis_connection("images"))
        queue.enqueue_in(timedelta(seconds=1), queueing.TASK_PATH, put_off.pk)
        wait_until(lambda: completed(put_off), timeout=60, message="a job put off with enqueue_in after the restart")

        # While a worker finishes a job: that worker exits, the pool starts another.
        in_flight = services.submit_job(customer=customer, kind="image", prompt="in flight at the restart")
        wait_until(lambda: Job.objects.filter(pk=in_flight.pk, status=JobStatus.PROCESSING).exists(), timeout=60,
                   message="a worker to take the job")
        restart_redis()
        wait_until(lambda: completed(in_flight), timeout=30, message="the job in flight to complete")
        after = services.submit_job(customer=customer, kind="image", prompt="after the second restart")
        wait_until(lambda: completed(after), timeout=60, message="a job sent after the second restart")
        assert pool.poll() is None
    finally:
        stopped = stop_gracefully(pool)
        if not stopped:
            os.killpg(pool.pid, signal.SIGUSR1)  # the workers print their stacks (jobs.worker), for the report
            time.sleep(1)
            os.killpg(pool.pid, signal.SIGKILL)
    output = log.read_text(errors="replace")
    assert stopped, output  # and a pool that lived through all that still stops on SIGTERM
    assert find_drift() == [], output


def test_a_pool_stopped_with_sigterm_finishes_the_jobs_in_hand(clean_queues, tmp_path):
    """systemd's KillMode=mixed: SIGTERM to the pool only, which gives each worker one SIGINT."""
    customer = make_customer(balance=100_000)
    log = tmp_path / "pool.log"
    pool = start_pool(log, "images", FAKE_PROVIDER_LATENCY=3)
    try:
        jobs = [services.submit_job(customer=customer, kind="image", prompt=f"in hand {i}") for i in range(2)]
        wait_until(lambda: Job.objects.filter(status=JobStatus.PROCESSING).count() == 2, timeout=60,
                   message="both workers to take a job (two picture calls at once)")
        pool.send_signal(signal.SIGTERM)
        assert pool.wait(timeout=60) == 0, log.read_text(errors="replace")
    finally:
        output_of(pool)
    assert all(completed(job) for job in jobs), log.read_text(errors="replace")
    assert get_held(customer) == 0 and find_drift() == []


def test_an_rq_time_out_still_stops_a_job_in_the_non_forking_worker(clean_queues, monkeypatch):
    customer = make_customer(balance=10_000)
    with monkeypatch.context() as patched:
        patched.setattr(queueing, "enqueue_job", lambda job_id, kind: "test")
        slow = services.submit_job(customer=customer, kind="image", prompt="too slow")
        quick = services.submit_job(customer=customer, kind="image", prompt="next in line")
    queue = django_rq.get_queue("images")
    queue.enqueue(queueing.TASK_PATH, slow.pk, job_timeout=1)
    queue.enqueue(queueing.TASK_PATH, quick.pk, job_timeout=30)
    worker = start_worker("images", FAKE_PROVIDER_LATENCY=3)
    try:
        wait_until(lambda: completed(quick), timeout=60, message="the job after the timed-out one")
    finally:
        output = output_of(worker)
    slow.refresh_from_db()
    assert slow.status == JobStatus.FAILED and slow.error_code == "internal", output
    assert "JobTimeoutException" in output
    assert get_held(customer) == 0 and find_drift() == []


def test_the_workers_of_a_pool_killed_with_sigkill_stop_too(clean_queues, tmp_path):
    log = tmp_path / "pool.log"
    pool = start_pool(log, "images")
    group = os.getpgid(pool.pid)
    members = lambda: subprocess.run(["pgrep", "-g", str(group)], capture_output=True, text=True).stdout.split()  # noqa: E731
    try:
        wait_until(lambda: len(members()) >= 3, timeout=60, message="the pool and its two workers")
        pool.kill()  # the pool alone, as the OOM killer would
        pool.wait(10)
        try:
            gone = wait_until(lambda: not members(), timeout=30, message="the orphaned workers to stop")
        except AssertionError:
            gone = False
        left = subprocess.run(["ps", "-o", "pid,ppid,stat,cmd", "-g", str(group)], capture_output=True, text=True).stdout
        if not gone:
            os.killpg(group, signal.SIGUSR1)  # their stacks, for the report
            time.sleep(1)
    finally:
        if members():
            os.killpg(group, signal.SIGKILL)
    assert gone, left + log.read_text(errors="replace")
