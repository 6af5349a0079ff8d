"""Capacity: 500 videos and 100 pictures at once, the real Kling and Gemini clients against the stubs.

On PostgreSQL and Redis, as ``bench/jobs.py`` (whose database and thread helpers it reuses).
``manage.py provider_stubs`` runs the stubs in their own process: a Kling task takes D seconds
(``--task-seconds``, 60: real tasks take minutes) with a parallel-task limit of Q (``--kling-quota``,
1000), a Gemini call L seconds (``--latency``, 2). W worker processes (``--workers``, default
``JOB_WORKERS`` or 4: ``manage.py rqworker images videos default``) stay up for the run. After a
warm-up of W pictures the stubs' counters are reset, then V videos (``--videos``, 500) and P
pictures (``--pictures``, 100), one customer each, are submitted at once through
``jobs.services.submit_job`` from a few threads, and the run waits until every job has finished
or ``--timeout`` has passed. ``--quick``: D = 10 s, 50 videos, 20 pictures.

Prints, measured from the first submit:
- the wall time until the last video completed ÷ D (a lower bound when not all completed in time);
- the most Kling tasks in flight at once (the stub's count), and the extra tasks it saw beyond
  one per video;
- the workers' CPU (their process trees, from /proc) per video, pictures' included;
- picture throughput ÷ (W ÷ L), and the pictures' p50/p99 wait (submit to done, and submit to
  start) while the videos are in flight;
- each worker's RSS (now and peak);
- lost jobs (any job not completed: the stubs never fail one) and double charges (a job charged
  more than once, a completed job not charged, a failed job charged), from the database;
- drift: accounts whose cached figures disagree with the ledger (what ``manage.py reconcile``
  checks);
and last
    RESULT capacity video_ratio=<wall ÷ D> image_ratio=<throughput ÷ (W ÷ L)> target_video=1.3 target_image=0.8

Usage: .venv/bin/python bench/capacity.py [--quick] [--videos 500] [--pictures 100]
       [--task-seconds 60] [--latency 2] [--kling-quota 1000] [--workers N] [--timeout S]
       [--pg postgres://postgres@127.0.0.1:5432] [--redis redis://127.0.0.1:6379/6]
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.jobs import in_threads, percentile, psql  # noqa: E402  (also sets a benchmark SECRET_KEY)

BENCH_DB = "genbot_bench_capacity"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
TARGET_VIDEO, TARGET_IMAGE = 1.3, 0.8
# A real 5-second MP4 from the fake provider, for the Kling stub to deliver: the workers probe
# every video they store (jobs.media), and that costs what it costs with Kling's real files.
FAKE_VIDEO = """
import sys, django
django.setup()
from jobs.providers.base import GenerationRequest, ProgressReporter
from jobs.providers.fake import FakeProvider
request = GenerationRequest(kind="video_text", prompt="capacity", aspect_ratio="16:9", duration=5)
open(sys.argv[1], "wb").write(FakeProvider(latency=0).generate(request, ProgressReporter()).media[0].content)
"""


# --- worker processes, from /proc ---


def process_tree(root: int) -> list[int]:
    """``root`` and its descendants (a worker pool's children, a forking worker's work horse)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        tree += frontier
    return tree


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of the processes and of their children already waited for."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return total / CLOCK_TICKS


def memory_mb(pid: int) -> tuple[float, float]:
    """(RSS now, peak RSS) in MB."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return tuple(int(status.get(name, "0 kB").split()[0]) / 1024 for name in ("VmRSS", "VmHWM"))


# --- the run ---


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="D = 10 s, 50 videos, 20 pictures (unless given)")
    parser.add_argument("--videos", type=int)
    parser.add_argument("--pictures", type=int)
    parser.add_argument("--task-seconds", type=float, help="D: a Kling task's duration (60; --quick 10)")
    parser.add_argument("--latency", type=float, default=2.0, help="L: a Gemini call's latency")
    parser.add_argument("--kling-quota", type=int, default=1000, help="Kling's parallel-task limit (the stub's and the setting)")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("JOB_WORKERS") or 4))
    parser.add_argument("--submitters", type=int, default=4)
    parser.add_argument("--timeout", type=float, help="give up waiting after this many seconds (default max(20 D, 600))")
    parser.add_argument("--pg", default=os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432"))
    parser.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/6"))
    args = parser.parse_args()
    quick = args.quick
    args.videos = args.videos if args.videos is not None else (50 if quick else 500)
    args.pictures = args.pictures if args.pictures is not None else (20 if quick else 100)
    args.task_seconds = args.task_seconds or (10.0 if quick else 60.0)
    args.timeout = args.timeout or max(20 * args.task_seconds, 600.0)
    return args


def stub_stats(url: str) -> dict:
    return requests.get(f"{url}/_stub/stats", timeout=5).json()


def main() -> None:
    args = parse_args()
    psql(args.pg, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    psql(args.pg, f"CREATE DATABASE {BENCH_DB}")
    media = tempfile.mkdtemp(prefix="genbot-bench-capacity-")
    video = Path(media) / "kling-stub.mp4"
    subprocess.run([sys.executable, "-c", FAKE_VIDEO, str(video)], cwd=ROOT, check=True,
                   env={**os.environ, "DJANGO_SETTINGS_MODULE": "genbot.settings"})
    # Free ports picked by the stubs themselves; their first two lines say which. Their log (a
    # callback nobody answered, say) goes to a file beside the media.
    stubs = subprocess.Popen(
        [sys.executable, "manage.py", "provider_stubs", "--gemini-port", "0", "--kling-port", "0",
         "--gemini-latency", str(args.latency), "--kling-task-seconds", str(args.task_seconds),
         "--kling-max-parallel", str(args.kling_quota), "--kling-video", str(video)],
        cwd=ROOT, env={**os.environ, "STANDINS": "true", "LOG_LEVEL": "WARNING"}, stdout=subprocess.PIPE, text=True,
        stderr=open(Path(media) / "stubs.log", "w"))  # noqa: SIM115 - the child holds it until the end
    announced = stubs.stdout.readline() + stubs.stdout.readline()
    gemini_url, kling_url = (announced.split(f"{name}=", 1)[1].split()[0] for name in ("GEMINI_API_URL", "KLING_API_URL"))
    env = {
        "DATABASE_URL": f"{args.pg}/{BENCH_DB}", "REDIS_URL": args.redis,
        "MEDIA_ROOT": media, "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "genbot.settings", "STANDINS": "true", "AI_PROVIDER": "real",
        # The stubs' default keys (standins.gemini / standins.kling).
        "GEMINI_API_URL": gemini_url, "NANO_BANANA_API_KEY": "test-gemini-key",
        "KLING_API_URL": kling_url, "KLING_API_KEY": "test-access-key:test-secret-key-of-32-characters",
        "KLING_MAX_CONCURRENT_TASKS": str(args.kling_quota), "JOB_WORKERS": str(args.workers),
        "MAX_ACTIVE_JOBS_PER_CUSTOMER": "3",
    }
    os.environ.update(env)
    import django

    django.setup()
    import django_rq
    from django.core.management import call_command
    from django.db.models import Count, Q

    from billing.models import Transfer, TransferKind
    from billing.selectors import find_drift
    from jobs import services
    from jobs.models import Job, JobKind, JobStatus
    from tests.helpers import make_customer

    call_command("migrate", verbosity=0)
    for name in ("images", "videos", "default"):
        queue = django_rq.get_queue(name)
        queue.empty()
        for registry in (queue.finished_job_registry, queue.failed_job_registry, queue.started_job_registry):
            queue.connection.delete(registry.key)

    kinds = interleave(args.videos, args.pictures, video=JobKind.VIDEO_TEXT, picture=JobKind.IMAGE)
    customers = [make_customer(balance=1_000_000, telegram_id=950_000_000 + i) for i in range(len(kinds) + args.workers)]
    workers: list[subprocess.Popen] = []
    try:
        workers += [subprocess.Popen([sys.executable, "manage.py", "rqworker", "images", "videos", "default", "-v", "0"],
                                     cwd=ROOT, env=dict(os.environ)) for _ in range(args.workers)]
        # Warm-up: imports, connections, the first files; not measured.
        warm = [services.submit_job(customer=c, kind=JobKind.IMAGE, prompt="warm-up") for c in customers[len(kinds):]]
        deadline = time.monotonic() + 120
        while Job.objects.filter(pk__in=[j.pk for j in warm]).exclude(status__in=JobStatus.finished()).exists():
            if time.monotonic() > deadline:
                raise SystemExit("the warm-up did not finish: are the workers up?")
            time.sleep(0.2)
        for url in (kling_url, gemini_url):
            requests.post(f"{url}/_stub/reset", timeout=5)
        worker_trees = {w.pid: process_tree(w.pid) for w in workers}
        cpu_before = sum(cpu_seconds(tree) for tree in worker_trees.values())

        measured = customers[:len(kinds)]
        jobs_of = list(zip(measured, kinds))
        t0 = time.perf_counter()
        started_at = dt.datetime.now(dt.UTC)
        in_threads(args.submitters, jobs_of, lambda item: services.submit_job(
            customer=item[0], kind=item[1], prompt=f"capacity benchmark {item[1]} for {item[0].pk}"))
        submitted = time.perf_counter() - t0
        batch = Job.objects.filter(customer__in=measured)
        timed_out = False
        last_report = 0.0
        while batch.exclude(status__in=JobStatus.finished()).exists():
            elapsed = time.perf_counter() - t0
            if elapsed > args.timeout:
                timed_out = True
                break
            if elapsed - last_report >= 30:
                last_report = elapsed
                done = batch.filter(status=JobStatus.COMPLETED).aggregate(
                    videos=Count("pk", filter=Q(kind=JobKind.VIDEO_TEXT)), pictures=Count("pk", filter=Q(kind=JobKind.IMAGE)))
                print(f"  {elapsed:6.0f} s: {done['videos']}/{args.videos} videos, {done['pictures']}/{args.pictures} "
                      f"pictures done; Kling tasks in flight {stub_stats(kling_url)['in_flight']}", flush=True)
            time.sleep(0.5)
        waited = time.perf_counter() - t0
        cpu = sum(cpu_seconds(process_tree(pid)) for pid in worker_trees) - cpu_before
        memory = {pid: [memory_mb(p) for p in process_tree(pid)] for pid in worker_trees}
        kling, gemini = stub_stats(kling_url), stub_stats(gemini_url)
    finally:
        for process in (*workers, stubs):
            process.terminate()
        for process in (*workers, stubs):
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()

    # --- the figures, from the database once the workers have stopped ---
    def seconds_since_start(moment) -> float:
        return (moment - started_at).total_seconds()

    videos, pictures = batch.filter(kind=JobKind.VIDEO_TEXT), batch.filter(kind=JobKind.IMAGE)
    video_done = [seconds_since_start(m) for m in videos.filter(status=JobStatus.COMPLETED).values_list("completed_at", flat=True)]
    picture_rows = list(pictures.filter(status=JobStatus.COMPLETED).values_list("created_at", "started_at", "completed_at"))
    all_videos_done = len(video_done) == args.videos
    video_wall = max(video_done) if all_videos_done else waited
    picture_wall = max((seconds_since_start(done) for _c, _s, done in picture_rows), default=waited)
    throughput = len(picture_rows) / picture_wall if picture_rows else 0.0
    picture_total = [(done - created).total_seconds() for created, _s, done in picture_rows]
    picture_queue = [(start - created).total_seconds() for created, start, _d in picture_rows if start]

    lost = {status: count for status, count in batch.exclude(status=JobStatus.COMPLETED)
            .values_list("status").annotate(n=Count("pk")).values_list("status", "n")}
    lost_errors = list(batch.exclude(status=JobStatus.COMPLETED).exclude(error_code="")
                       .values_list("error_code").annotate(n=Count("pk")).values_list("error_code", "n")[:5])
    charges = Count("reservation__settlement", filter=Q(reservation__settlement__kind=TransferKind.POST))
    per_job = batch.annotate(charges=charges)
    charged_twice = per_job.filter(charges__gt=1).count()
    completed_uncharged = per_job.filter(status=JobStatus.COMPLETED, charges=0).count()
    failed_charged = per_job.exclude(status=JobStatus.COMPLETED).filter(charges__gt=0).count()
    customers_charged_twice = (Transfer.objects.filter(customer__in=measured, kind=TransferKind.POST)
                               .values("customer").annotate(n=Count("pk")).filter(n__gt=1).count())
    double_charges = charged_twice + failed_charged + customers_charged_twice
    drift = find_drift()
    lost_count = sum(lost.values())

    print(f"workers: {args.workers} x manage.py rqworker images videos default; stubs: Kling D={args.task_seconds:g} s, "
          f"quota {args.kling_quota}; Gemini L={args.latency:g} s")
    print(f"submitted {args.videos} videos + {args.pictures} pictures in {submitted:.1f} s "
          f"({args.submitters} threads); waited {waited:.0f} s{' (timed out)' if timed_out else ''}")
    note = "" if all_videos_done else f"  (only {len(video_done)}/{args.videos} done: a lower bound)"
    print(f"videos   : last completed after {video_wall:.1f} s = {video_wall / args.task_seconds:.2f} D{note}")
    print(f"           most Kling tasks in flight {kling['max_in_flight']}; tasks created {kling['tasks_created']} "
          f"(extra beyond one per video: {kling['tasks_created'] - args.videos}); refused 1303 {kling['refused_parallel']}, "
          f"1302 {kling['refused_rate']}; polls {kling['polls']}; callbacks sent {kling['callbacks_sent']}, "
          f"failed {kling['callbacks_failed']}")
    print(f"           worker CPU {cpu:.1f} s in all = {cpu * 1000 / max(1, args.videos):.1f} ms per video (pictures' included)")
    if picture_rows:
        print(f"pictures : {len(picture_rows)}/{args.pictures} in {picture_wall:.1f} s = {throughput:.2f}/s "
              f"vs W/L = {args.workers / args.latency:.2f}/s; submit-to-done p50 {statistics.median(picture_total):.1f} s "
              f"p99 {percentile(picture_total, 0.99):.1f} s; submit-to-start p50 {statistics.median(picture_queue):.1f} s "
              f"p99 {percentile(picture_queue, 0.99):.1f} s")
    else:
        print(f"pictures : none completed in {waited:.0f} s")
    print(f"           Gemini calls {gemini['calls']} (refused {gemini['refused_concurrency']} + {gemini['refused_rate']}), "
          f"most at once {gemini['max_concurrent']}")
    for index, pid in enumerate(worker_trees, 1):
        print(f"worker {index}: " + ", ".join(f"RSS {now:.0f} MB (peak {peak:.0f} MB)" for now, peak in memory[pid]))
    print(f"lost jobs: {lost_count} {lost or ''} {lost_errors or ''}".rstrip())
    print(f"double charges: {double_charges} (jobs charged twice {charged_twice}, failed but charged {failed_charged}, "
          f"customers charged twice {customers_charged_twice}); completed but not charged: {completed_uncharged}")
    print(f"drift: {len(drift)}")
    print(f"RESULT capacity video_ratio={video_wall / args.task_seconds:.2f} "
          f"image_ratio={throughput / (args.workers / args.latency):.2f} target_video={TARGET_VIDEO} target_image={TARGET_IMAGE}")


def interleave(videos: int, pictures: int, *, video: str, picture: str) -> list[str]:
    """The kinds in the order customers send them: the pictures spread evenly among the videos."""
    step = max(1, (videos + pictures) // max(1, pictures))
    out, remaining = [], pictures
    for index in range(videos):
        if remaining and index % step == 0:
            out.append(picture)
            remaining -= 1
        out.append(video)
    return out + [picture] * remaining


if __name__ == "__main__":
    main()
