"""Fixtures for the jobs suite: fast settings, an isolated media root, clean queues, stubs."""
from __future__ import annotations

import subprocess
import sys
import weakref
from pathlib import Path

import django_rq
import pytest
from rq.exceptions import NoSuchJobError
from rq.job import Job as RQJob
from django.conf import settings as django_settings

from jobs import heartbeat, queueing
from standins.providers import GeminiStub, KlingStub
from tests.helpers import free_port, subprocess_env

ROOT = Path(__file__).resolve().parents[2]
QUEUES = ("images", "videos", "default")


@pytest.fixture(autouse=True)
def fast_jobs(settings, tmp_path):
    """No waiting anywhere unless a test asks: zero latency, near-zero backoff, own media root."""
    settings.AI_PROVIDER = "fake"
    settings.FAKE_PROVIDER_LATENCY = 0
    settings.FAKE_PROVIDER_FAILURE_RATE = 0
    settings.AI_RETRY_BASE_DELAY = 0.001
    settings.AI_RETRY_MAX_DELAY = 0.01
    settings.AI_RETRY_ATTEMPTS = 3
    settings.KLING_POLL_INTERVAL = 0.01
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.MAX_ACTIVE_JOBS_PER_CUSTOMER = 3
    queueing.forget_redis_health()
    yield settings
    queueing.shutdown_fallback(wait=True)
    heartbeat.stop_monitor()
    queueing.forget_redis_health()


@pytest.fixture(autouse=True)
def without_other_apps_receivers():
    """Jobs' tests see only their own receivers of job signals (the bot tests its own)."""
    from jobs.signals import job_finished, job_progress

    saved = {}
    for signal in (job_finished, job_progress):
        saved[signal] = list(signal.receivers)
        with signal.lock:
            signal.receivers = [r for r in signal.receivers if not _is_foreign(r)]
            signal.sender_receivers_cache.clear()
    yield
    for signal, receivers in saved.items():
        with signal.lock:
            signal.receivers = receivers
            signal.sender_receivers_cache.clear()


def _is_foreign(record) -> bool:
    target = record[1]
    if isinstance(target, weakref.ReferenceType):
        target = target()
    module = getattr(target, "__module__", "") or ""
    return not module.startswith(("jobs", "tests"))


@pytest.fixture
def clean_queues():
    """Empty this run's queues (the test Redis database) before and after the test."""
    def empty():
        for name in QUEUES:
            queue = django_rq.get_queue(name)
            queue.empty()
            for registry in (queue.started_job_registry, queue.failed_job_registry, queue.finished_job_registry,
                             queue.scheduled_job_registry):
                for job_id in registry.get_job_ids():
                    try:
                        RQJob.fetch(job_id, connection=queue.connection).delete()
                    except NoSuchJobError:
                        pass
                queue.connection.delete(registry.key)
            # A worker SIGKILLed by an earlier test leaves its scheduler lock for a minute.
            queue.connection.delete(f"rq:scheduler-lock:{name}")
    empty()
    yield
    empty()


@pytest.fixture
def no_enqueue(monkeypatch):
    """Record enqueues instead of sending them (tests that drive the task themselves)."""
    sent: list[tuple[int, str]] = []
    monkeypatch.setattr(queueing, "enqueue_job", lambda job_id, kind: sent.append((job_id, kind)) or "test")
    return sent


@pytest.fixture
def redis_down(settings):
    """Point the queues at a port where nothing listens (the shared Redis keeps running)."""
    dead = f"redis://127.0.0.1:{free_port()}/0"
    settings.RQ_QUEUES = {name: {**conf, "URL": dead} for name, conf in django_settings.RQ_QUEUES.items()}
    queueing.forget_redis_health()
    return dead


@pytest.fixture
def gemini_stub(settings):
    with GeminiStub(slow_seconds=1.0) as stub:
        settings.NANO_BANANA_API_KEY = stub.api_key
        settings.GEMINI_API_URL = stub.url
        yield stub


@pytest.fixture
def kling_stub(settings):
    with KlingStub(slow_seconds=1.0) as stub:
        settings.KLING_API_KEY = f"{stub.access_key}:{stub.secret_key}"
        settings.KLING_API_URL = stub.url
        yield stub


def start_worker(*queues: str, burst: bool = False, scheduler: bool = False, **env) -> subprocess.Popen:
    """A real ``manage.py rqworker`` process (the project's worker class); ``scheduler``: it also
    runs RQ's scheduler (the scheduled tries and polls)."""
    args = [sys.executable, "manage.py", "rqworker", *(queues or QUEUES)]
    if burst:
        args.append("--burst")
    if scheduler:
        args.append("--with-scheduler")
    return subprocess.Popen(args, cwd=ROOT, env=subprocess_env(**env), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
