"""Generation jobs through the whole pipeline against raw RQ no-op jobs: same workers, same run.

On PostgreSQL and Redis. W worker processes (``manage.py rqworker``, the project's worker class,
listening on ``images`` and ``default``) stay up for the whole run. Then, from S submitting
threads in this process:
- raw: N no-op RQ jobs are enqueued on ``default``, before and again after the pipeline (the
  mean of the two is the reference, as the machine's load drifts);
- pipeline: N zero-latency fake image jobs go through submit -> reserve -> enqueue -> worker ->
  charge -> announce (``job_finished``), one customer each.
- floor: N RQ jobs that only draw and store the fake picture (``generate_and_store``): the part
  of a zero-latency job no pipeline can skip, to show how much of the ratio is the pipeline's.
Each phase is timed from its first enqueue/submit to the moment all N are done. Prints jobs/s,
p50/p99 submit-to-start latency, the books' check, and last
    RESULT jobs ratio=<pipeline seconds per job / raw RQ seconds per job>
A regression figure for the pipeline's own cost, without a target (issue 13): what customers
feel at scale is ``bench/capacity.py``'s.

Usage: .venv/bin/python bench/jobs.py [--jobs 500] [--workers 2] [--submitters 2]
       [--pg postgres://postgres@127.0.0.1:5432] [--redis redis://127.0.0.1:6379/5] [--jobs-only]
"""
from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

# DEBUG off refuses the development SECRET_KEY; any key will do for a benchmark (children inherit it).
os.environ.setdefault("SECRET_KEY", "bench-" + secrets.token_urlsafe(32))

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "genbot_bench_jobs"


# ``manage.py rqworker`` after disconnecting every receiver of the job signals that is not jobs' own.
WORKER_WITHOUT_SUBSCRIBERS = """
import sys, django
django.setup()
from django.core.management import execute_from_command_line
from jobs.signals import job_finished, job_progress
for signal in (job_finished, job_progress):
    signal.receivers = []
    signal.sender_receivers_cache.clear()
execute_from_command_line(["manage.py", "rqworker", *sys.argv[1:]])
"""


def noop() -> None:
    """The raw RQ job: does nothing (the worker imports this module; keep its top light)."""


def generate_and_store(index: int) -> None:
    """The floor: what a zero-latency fake image job does outside the database and the ledger.

    The fake provider draws and encodes the picture and Django's storage writes it, exactly as
    ``jobs.tasks.run_job`` does; no job row, no money, no message. No pipeline can be faster.
    """
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from jobs.providers.base import GenerationRequest, ProgressReporter
    from jobs.providers.fake import FakeProvider

    request = GenerationRequest(kind="image", prompt=f"benchmark picture for {index}", input_image=None,
                                input_mime="", aspect_ratio="", duration=5, mode="std")
    result = FakeProvider(latency=0, failure_rate=0).generate(request, ProgressReporter())
    default_storage.save(f"bench/floor/{index}.png", ContentFile(result.media[0].content))


def psql(server: str, sql: str) -> None:
    subprocess.run(["psql", f"{server}/postgres", "-q", "-c", sql], check=True, capture_output=True)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def in_threads(count: int, items: list, fn) -> None:
    """Run ``fn(item)`` for every item, spread over ``count`` threads."""
    from django.db import connections

    def run(chunk):
        try:
            for item in chunk:
                fn(item)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(items[i::count],)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def wait_for(predicate, timeout: float = 120.0, step: float = 0.02) -> float:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if predicate():
            return time.perf_counter()
        time.sleep(step)
    raise SystemExit("timed out: the workers did not finish")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--submitters", type=int, default=2)
    parser.add_argument("--pg", default=os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432"))
    parser.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5"))
    parser.add_argument("--jobs-only", action="store_true",
                        help="disconnect other apps' receivers of the job signals in the workers (still sent): "
                             "the jobs pipeline alone, without the bot's messages")
    args = parser.parse_args()
    n = args.jobs

    psql(args.pg, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    psql(args.pg, f"CREATE DATABASE {BENCH_DB}")
    media = tempfile.mkdtemp(prefix="genbot-bench-media-")
    env = {
        "DATABASE_URL": f"{args.pg}/{BENCH_DB}", "REDIS_URL": args.redis, "MEDIA_ROOT": media,
        "AI_PROVIDER": "fake", "FAKE_PROVIDER_LATENCY": "0", "FAKE_PROVIDER_FAILURE_RATE": "0",
        "LOG_LEVEL": "WARNING", "DJANGO_SETTINGS_MODULE": "genbot.settings",
    }
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    import django_rq
    from django.conf import settings
    from django.core.management import call_command
    from rq.job import Job as RQJob

    from billing.selectors import find_drift, total_of_all_accounts
    from jobs import services
    from jobs.models import Job, JobStatus
    from tests.helpers import make_customer

    call_command("migrate", verbosity=0)
    raw_queue, images = django_rq.get_queue("default"), django_rq.get_queue("images")
    for queue in (raw_queue, images):
        queue.empty()
        for registry in (queue.finished_job_registry, queue.failed_job_registry, queue.started_job_registry):
            raw_queue.connection.delete(registry.key)
    customers = [make_customer(balance=10_000, telegram_id=900_000_000 + i) for i in range(n + 20)]

    worker_class = settings.RQ["WORKER_CLASS"]
    command = [sys.executable, "manage.py", "rqworker", "images", "default", "-v", "0"]
    if args.jobs_only:
        command = [sys.executable, "-c", WORKER_WITHOUT_SUBSCRIBERS, "images", "default", "-v", "0"]
    workers = [subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}) for _ in range(args.workers)]
    try:
        # Warm-up: imports, connections, first files; not timed.
        warm = [services.submit_job(customer=c, kind="image", prompt="warm-up") for c in customers[n:]]
        for _ in range(20):
            raw_queue.enqueue("bench.jobs.noop")
        wait_for(lambda: Job.objects.filter(pk__in=[j.pk for j in warm], status=JobStatus.COMPLETED).count() == len(warm)
                 and raw_queue.finished_job_registry.count >= 20, timeout=60)

        def raw_round(label: str, already_done: int, task: str = "bench.jobs.noop") -> tuple[float, list[float]]:
            """N RQ jobs of ``task`` (given the job's index); returns (seconds, enqueue-to-start latencies)."""
            ids = [f"bench-raw-{label}-{i}" for i in range(n)]
            args_of = (lambda job_id: (int(job_id.rsplit("-", 1)[1]),)) if task != "bench.jobs.noop" else (lambda job_id: ())
            started = time.perf_counter()
            in_threads(args.submitters, ids, lambda job_id: raw_queue.enqueue(task, *args_of(job_id), job_id=job_id))
            done = wait_for(lambda: raw_queue.finished_job_registry.count >= already_done + n)
            jobs = RQJob.fetch_many(ids, connection=raw_queue.connection)
            return done - started, [(j.started_at - j.enqueued_at).total_seconds() for j in jobs if j and j.started_at]

        # Raw RQ before and after the pipeline: the machine's load drifts, so the baseline
        # brackets the pipeline and their mean is the reference.
        raw_before, raw_latency = raw_round("before", 20)

        # Pipeline: N zero-latency fake image jobs.
        finished_before = Job.objects.filter(status=JobStatus.COMPLETED).count()
        started = time.perf_counter()
        in_threads(args.submitters, customers[:n],
                   lambda c: services.submit_job(customer=c, kind="image", prompt=f"benchmark picture for {c.pk}"))
        pipe_done = wait_for(lambda: Job.objects.filter(status=JobStatus.COMPLETED).count() >= finished_before + n)
        pipe_seconds = pipe_done - started
        measured = Job.objects.filter(customer__in=customers[:n])
        pipe_latency = [(started_at - created_at).total_seconds()
                        for created_at, started_at in measured.values_list("created_at", "started_at")]
        failed = measured.exclude(status=JobStatus.COMPLETED).count()
        raw_after, raw_latency_after = raw_round("after", 20 + n)
        raw_latency += raw_latency_after
        raw_seconds = (raw_before + raw_after) / 2
        floor_seconds, _floor_latency = raw_round("floor", 20 + 2 * n, task="bench.jobs.generate_and_store")
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=30)

    drift = find_drift()
    subscribers = "job signals sent, other apps' receivers disconnected" if args.jobs_only else "with the bot's receivers"
    print(f"workers: {args.workers} x {worker_class}; submitting threads: {args.submitters}; jobs per phase: {n}; {subscribers}")
    print(f"raw RQ no-op : {raw_seconds:7.2f} s  {n / raw_seconds:8.1f} jobs/s  (before {raw_before:.2f} s, after {raw_after:.2f} s)  "
          f"enqueue-to-start p50 {statistics.median(raw_latency) * 1000:7.1f} ms  p99 {percentile(raw_latency, 0.99) * 1000:7.1f} ms")
    print(f"pipeline     : {pipe_seconds:7.2f} s  {n / pipe_seconds:8.1f} jobs/s  "
          f"submit-to-start p50 {statistics.median(pipe_latency) * 1000:7.1f} ms  p99 {percentile(pipe_latency, 0.99) * 1000:7.1f} ms")
    print(f"pipeline jobs not completed: {failed}; ledger drift: {len(drift)}; sum of all accounts: {total_of_all_accounts()}")
    print(f"floor        : {floor_seconds:7.2f} s  {n / floor_seconds:8.1f} jobs/s  (fake generation + storage only, "
          f"no database: ratio {floor_seconds / raw_seconds:.2f}; the pipeline adds {(pipe_seconds - floor_seconds) / n * 1000:.2f} ms a job)")
    ratio = (pipe_seconds / n) / (raw_seconds / n)
    print(f"RESULT jobs ratio={ratio:.2f}")


if __name__ == "__main__":
    main()
