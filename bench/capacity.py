"""Capacity: 500 videos and 100 pictures at once, the real Kling and Gemini clients against the stubs.

The deployment's shape, on PostgreSQL (its own database) and Redis (``--redis``, its own db):
- ``manage.py provider_stubs``: a Kling task takes D seconds (``--task-seconds``, 60: real tasks
  take minutes), at most Q tasks at once (``--kling-quota``, 1000, answered 1303 beyond); a Gemini
  call takes L seconds (``--latency``, 2), at most ``GEMINI_MAX_CONCURRENT`` at once (429 beyond);
- the web app as deployed (``gunicorn genbot.wsgi -c deploy/gunicorn.conf.py``), where Kling's
  callbacks arrive (``PUBLIC_BASE_URL``, ``/webhook/kling/<token>``);
- the workers as deployed: ``manage.py rqworker-pool videos images default --num-workers W``
  (``--workers``, default ``JOB_WORKERS`` or 4), so RQ's scheduler runs inside the pool
  (``enqueue_in``: the polls) as in production;
- ``manage.py run_periodic`` (the reaper, every minute), as production runs it.
Product settings: ``KLING_MAX_CONCURRENT_TASKS`` = Q, ``GEMINI_MAX_CONCURRENT`` = W (every worker
may hold a picture), ``KLING_FIRST_POLL`` / ``KLING_POLL_INTERVAL`` the product's defaults (3 s /
10 s) unless ``--first-poll`` / ``--poll-interval`` say otherwise.

After a warm-up of W pictures the stubs' counters are reset, then V videos
(``--videos``, 500) and P pictures (``--pictures``, 100), one customer each, are submitted at once
through ``jobs.services.submit_job`` from a few threads, and the run waits until every job has
finished or ``--timeout`` has passed. The queues are sampled every second meanwhile.
``--quick``: D = 10 s, 50 videos, 20 pictures.

Prints, measured from the first submit:
- the wall time until the last video completed ÷ D (a lower bound when not all completed in time);
- the most videos in flight at once (Kling tasks, the stub's count), tasks beyond one per video,
  1303/1302 refusals, polls per video, callbacks sent and failed;
- the pool's CPU (workers and scheduler, from /proc) per video, pictures' included, and the CPU of
  the web app, the periodic scheduler and the stubs;
- picture throughput ÷ (W ÷ L), and the pictures' p50/p99 wait (submit to start, submit to done)
  while the videos are in flight;
- RSS of the pool, of each worker (the pool's children) and of the scheduler, now and peak;
- the queues' longest backlog (videos, images, scheduled runs);
- lost jobs (any job not completed: the stubs never fail one) and double charges (a job charged
  more than once, a failed job charged, a customer charged twice), from the database;
- drift: accounts whose cached figures disagree with the ledger (what ``manage.py reconcile``
  checks);
and last
    RESULT capacity video_ratio=<wall ÷ D> image_ratio=<throughput ÷ (W ÷ L)> target_video=1.3 target_image=0.8

Usage: .venv/bin/python bench/capacity.py [--quick] [--videos 500] [--pictures 100]
       [--task-seconds 60] [--latency 2] [--kling-quota 1000] [--workers N] [--timeout S]
       [--first-poll S] [--poll-interval S] [--log-level INFO] [--profile-workers]
       [--pg postgres://postgres@127.0.0.1:5432] [--redis redis://127.0.0.1:6379/3]
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.jobs import in_threads, percentile, psql  # noqa: E402  (also sets a benchmark SECRET_KEY)

BENCH_DB = "genbot_bench_capacity"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
TARGET_VIDEO, TARGET_IMAGE = 1.3, 0.8
PY = sys.executable
GUNICORN = Path(sys.executable).parent / "gunicorn"  # the virtualenv's, beside its python
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


# ``manage.py rqworker-pool`` whose forked workers profile their jobs (cProfile, wall time) and
# write the stats to <dir>/worker-<pid>.prof every 100 jobs: where a worker's time goes under load.
PROFILED_POOL = """
import cProfile, os, sys, django
django.setup()
from django.core.management import execute_from_command_line
from jobs.worker import JobWorker
perform, profiles, done = JobWorker.perform_job, {}, {}
def perform_job(self, job, queue):
    profile = profiles.setdefault(os.getpid(), cProfile.Profile())
    profile.enable()
    try:
        return perform(self, job, queue)
    finally:
        profile.disable()
        done[os.getpid()] = done.get(os.getpid(), 0) + 1
        if done[os.getpid()] % 100 == 0:
            profile.dump_stats(os.path.join(sys.argv[1], f"worker-{os.getpid()}.prof"))
JobWorker.perform_job = perform_job
execute_from_command_line(["manage.py", "rqworker-pool", *sys.argv[2:]])
"""


# --- processes, from /proc ---


def children_of() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    return children


def process_tree(root: int) -> list[int]:
    """``root`` and its descendants (a pool's workers, a worker's scheduler process)."""
    children = children_of()
    tree, frontier = [root], [root]
    while frontier:
        frontier = [child for pid in frontier for child in children.get(pid, [])]
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
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return (0.0, 0.0)
    status = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    return tuple(int(status.get(name, "0 kB").split()[0]) / 1024 for name in ("VmRSS", "VmHWM"))


def machine_cpu() -> tuple[float, float]:
    """(busy, all) CPU seconds of the whole machine since boot, every core (from /proc/stat)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / CLOCK_TICKS, sum(fields[:8]) / CLOCK_TICKS


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_answers(url: str, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise SystemExit(f"{what} did not come up at {url}")


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
    parser.add_argument("--first-poll", type=float, help="KLING_FIRST_POLL (default: the product's)")
    parser.add_argument("--poll-interval", type=float, help="KLING_POLL_INTERVAL (default: the product's)")
    parser.add_argument("--submitters", type=int, default=4)
    parser.add_argument("--profile-workers", action="store_true",
                        help="cProfile every worker's jobs (wall time) into the log directory: costs time itself")
    parser.add_argument("--log-level", default="WARNING", help="LOG_LEVEL of the product's processes (INFO: every job)")
    parser.add_argument("--timeout", type=float, help="give up waiting after this many seconds (default max(20 D, 600))")
    parser.add_argument("--pg", default=os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432"))
    parser.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/3"))
    args = parser.parse_args()
    quick = args.quick
    args.videos = args.videos if args.videos is not None else (50 if quick else 500)
    args.pictures = args.pictures if args.pictures is not None else (20 if quick else 100)
    args.task_seconds = args.task_seconds or (10.0 if quick else 60.0)
    args.timeout = args.timeout or max(20 * args.task_seconds, 600.0)
    return args


def stub_stats(url: str) -> dict:
    return requests.get(f"{url}/_stub/stats", timeout=5).json()


class Processes:
    """The processes of the run, each logging to its own file; stopped in reverse order."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.started: dict[str, subprocess.Popen] = {}

    def start(self, name: str, argv: list[str], env: dict, **kwargs) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "w")  # noqa: SIM115 - the child holds it until the end
        kwargs.setdefault("stdout", log)
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stderr=log, **kwargs)
        self.started[name] = process
        return process

    def stop(self) -> None:
        # The workers first (warm shutdown), then what they talk to.
        for process in reversed(self.started.values()):
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()


class Sampler(threading.Thread):
    """Every second: the queues' lengths, the scheduled runs, the Kling tasks in flight."""

    def __init__(self, queues, kling_url: str, t0: float):
        super().__init__(daemon=True)
        self.queues, self.kling_url, self.t0 = queues, kling_url, t0
        self.samples: list[dict] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(1.0):
            try:
                sample = {"t": time.perf_counter() - self.t0, "in_flight": stub_stats(self.kling_url)["in_flight"]}
                for queue in self.queues:
                    sample[queue.name] = queue.count
                    sample[f"{queue.name}_scheduled"] = queue.scheduled_job_registry.count
                    sample[f"{queue.name}_started"] = queue.started_job_registry.count
                self.samples.append(sample)
            except Exception as exc:  # noqa: BLE001 - a missed sample is no reason to stop the run
                print(f"  (sample failed: {exc})", flush=True)

    def most(self, key: str) -> tuple[int, float]:
        """The largest value of ``key`` and when (seconds from the start)."""
        best = max(self.samples, key=lambda s: s.get(key, 0), default={"t": 0.0})
        return best.get(key, 0), best["t"]


def main() -> None:
    args = parse_args()
    psql(args.pg, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    psql(args.pg, f"CREATE DATABASE {BENCH_DB}")
    media = Path(tempfile.mkdtemp(prefix="genbot-bench-capacity-"))
    video = media / "kling-stub.mp4"
    subprocess.run([PY, "-c", FAKE_VIDEO, str(video)], cwd=ROOT, check=True,
                   env={**os.environ, "DJANGO_SETTINGS_MODULE": "genbot.settings"})
    processes = Processes(media)
    # Free ports picked by the stubs themselves; their first two lines say which.
    stubs = processes.start("stubs", [
        PY, "manage.py", "provider_stubs", "--gemini-port", "0", "--kling-port", "0",
        "--gemini-latency", str(args.latency), "--gemini-max-concurrent", str(args.workers),
        "--kling-task-seconds", str(args.task_seconds), "--kling-max-parallel", str(args.kling_quota),
        "--kling-video", str(video)], {**os.environ, "STANDINS": "true", "LOG_LEVEL": "WARNING"},
        stdout=subprocess.PIPE, text=True)
    announced = stubs.stdout.readline() + stubs.stdout.readline()
    gemini_url, kling_url = (announced.split(f"{name}=", 1)[1].split()[0] for name in ("GEMINI_API_URL", "KLING_API_URL"))
    web_port = free_port()
    env = {
        "DATABASE_URL": f"{args.pg}/{BENCH_DB}", "REDIS_URL": args.redis,
        "MEDIA_ROOT": str(media / "media"), "LOG_LEVEL": args.log_level,
        "DJANGO_SETTINGS_MODULE": "genbot.settings", "STANDINS": "false", "AI_PROVIDER": "real",
        # The stubs' default keys (standins.gemini / standins.kling).
        "GEMINI_API_URL": gemini_url, "NANO_BANANA_API_KEY": "test-gemini-key",
        "KLING_API_URL": kling_url, "KLING_API_KEY": "test-access-key:test-secret-key-of-32-characters",
        "KLING_MAX_CONCURRENT_TASKS": str(args.kling_quota), "GEMINI_MAX_CONCURRENT": str(args.workers),
        "JOB_WORKERS": str(args.workers), "PUBLIC_BASE_URL": f"http://127.0.0.1:{web_port}",
        "MAX_ACTIVE_JOBS_PER_CUSTOMER": "3",
    }
    if args.first_poll is not None:
        env["KLING_FIRST_POLL"] = str(args.first_poll)
    if args.poll_interval is not None:
        env["KLING_POLL_INTERVAL"] = str(args.poll_interval)
    os.environ.update(env)
    import django

    django.setup()
    import django_rq
    from django.conf import settings
    from django.core.management import call_command
    from django.db.models import Count, Q

    from billing.models import Transfer, TransferKind
    from billing.selectors import find_drift
    from jobs import services
    from jobs.models import Job, JobKind, JobStatus
    from tests.helpers import make_customer

    call_command("migrate", verbosity=0)
    queues = [django_rq.get_queue(name) for name in ("videos", "images", "default")]
    queues[0].connection.flushdb()  # the benchmark's own Redis db: queues, schedules, quotas, locks

    kinds = interleave(args.videos, args.pictures, video=JobKind.VIDEO_TEXT, picture=JobKind.IMAGE)
    customers = [make_customer(balance=1_000_000, telegram_id=950_000_000 + i) for i in range(len(kinds) + args.workers)]
    product_env = dict(os.environ)
    try:
        web = processes.start("web", [str(GUNICORN), "genbot.wsgi", "-c", "deploy/gunicorn.conf.py",
                                      "-b", f"127.0.0.1:{web_port}", "--log-level", "warning"], product_env)
        wait_until_answers(f"http://127.0.0.1:{web_port}/healthz", "the web app")
        pool_command = [PY, "manage.py", "rqworker-pool"]
        if args.profile_workers:
            pool_command = [PY, "-c", PROFILED_POOL, str(media)]
        pool = processes.start("workers", [*pool_command, "videos", "images", "default",
                                           "--num-workers", str(args.workers)], product_env)
        periodic = processes.start("periodic", [PY, "manage.py", "run_periodic"], product_env)
        # Warm-up: imports, connections, the first files; not measured.
        warm = [services.submit_job(customer=c, kind=JobKind.IMAGE, prompt="warm-up") for c in customers[len(kinds):]]
        deadline = time.monotonic() + 120
        while Job.objects.filter(pk__in=[j.pk for j in warm]).exclude(status__in=JobStatus.finished()).exists():
            if time.monotonic() > deadline or pool.poll() is not None:
                raise SystemExit(f"the warm-up did not finish: are the workers up? (logs in {media})")
            time.sleep(0.2)
        warm_failed = Job.objects.filter(pk__in=[j.pk for j in warm]).exclude(status=JobStatus.COMPLETED).count()
        if warm_failed:
            raise SystemExit(f"{warm_failed} warm-up jobs did not complete (logs in {media})")
        for url in (kling_url, gemini_url):
            requests.post(f"{url}/_stub/reset", timeout=5)
        others = {"web": web.pid, "periodic": periodic.pid, "stubs": stubs.pid}
        cpu_before = cpu_seconds(process_tree(pool.pid))
        machine_before = machine_cpu()
        others_before = {name: cpu_seconds(process_tree(pid)) for name, pid in others.items()}

        measured = customers[:len(kinds)]
        jobs_of = list(zip(measured, kinds))
        t0 = time.perf_counter()
        started_at = dt.datetime.now(dt.UTC)
        sampler = Sampler(queues, kling_url, t0)
        sampler.start()
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
            if elapsed - last_report >= 10:
                last_report = elapsed
                done = batch.filter(status=JobStatus.COMPLETED).aggregate(
                    videos=Count("pk", filter=Q(kind=JobKind.VIDEO_TEXT)), pictures=Count("pk", filter=Q(kind=JobKind.IMAGE)))
                last = sampler.samples[-1] if sampler.samples else {}
                print(f"  {elapsed:5.0f} s: {done['videos']}/{args.videos} videos, {done['pictures']}/{args.pictures} "
                      f"pictures done; in flight at Kling {last.get('in_flight', '?')}; queued videos "
                      f"{last.get('videos', '?')} images {last.get('images', '?')}, scheduled "
                      f"{last.get('videos_scheduled', '?')}", flush=True)
            time.sleep(0.5)
        waited = time.perf_counter() - t0
        sampler.stopping.set()
        tree = process_tree(pool.pid)
        cpu = cpu_seconds(tree) - cpu_before
        machine_busy, machine_all = (now - before for now, before in zip(machine_cpu(), machine_before))
        others_cpu = {name: cpu_seconds(process_tree(pid)) - others_before[name] for name, pid in others.items()}
        children = children_of()
        workers_pids = children.get(pool.pid, [])
        memory = {"pool": memory_mb(pool.pid)}
        for index, pid in enumerate(workers_pids, 1):
            memory[f"worker {index}"] = memory_mb(pid)
            for grandchild in children.get(pid, []):
                memory[f"worker {index}'s scheduler"] = memory_mb(grandchild)
        kling, gemini = stub_stats(kling_url), stub_stats(gemini_url)
        first_poll, poll_interval = settings.KLING_FIRST_POLL, settings.KLING_POLL_INTERVAL
    finally:
        processes.stop()

    # --- the figures, from the database once the workers have stopped ---
    def seconds_since_start(moment) -> float:
        return (moment - started_at).total_seconds()

    videos, pictures = batch.filter(kind=JobKind.VIDEO_TEXT), batch.filter(kind=JobKind.IMAGE)
    video_rows = list(videos.filter(status=JobStatus.COMPLETED).values_list("started_at", "completed_at"))
    video_done = [seconds_since_start(done) for _s, done in video_rows]
    video_start = [seconds_since_start(start) for start, _d in video_rows]
    picture_rows = list(pictures.filter(status=JobStatus.COMPLETED).values_list("created_at", "started_at", "completed_at"))
    all_videos_done = len(video_done) == args.videos
    video_wall = max(video_done, default=0.0) if all_videos_done else waited
    picture_wall = max((seconds_since_start(done) for _c, _s, done in picture_rows), default=waited)
    throughput = len(picture_rows) / picture_wall if picture_rows else 0.0
    # The pictures waiting while videos were in flight: those submitted before the last video completed.
    while_videos = [row for row in picture_rows if seconds_since_start(row[0]) < video_wall]
    picture_total = [(done - created).total_seconds() for created, _s, done in while_videos]
    picture_queue = [(start - created).total_seconds() for created, start, _d in while_videos if start]

    lost = dict(batch.exclude(status=JobStatus.COMPLETED).values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
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

    print(f"processes: rqworker-pool videos images default --num-workers {args.workers}; gunicorn -c "
          f"deploy/gunicorn.conf.py (callbacks); run_periodic; stubs: Kling D={args.task_seconds:g} s, quota "
          f"{args.kling_quota}; Gemini L={args.latency:g} s, GEMINI_MAX_CONCURRENT {args.workers}; "
          f"KLING_FIRST_POLL {first_poll:g} s, KLING_POLL_INTERVAL {poll_interval:g} s")
    print(f"submitted {args.videos} videos + {args.pictures} pictures in {submitted:.1f} s "
          f"({args.submitters} threads); waited {waited:.0f} s{' (timed out)' if timed_out else ''}; logs in {media}")
    note = "" if all_videos_done else f"  (only {len(video_done)}/{args.videos} done: a lower bound)"
    print(f"videos   : last completed after {video_wall:.1f} s = {video_wall / args.task_seconds:.2f} D{note}; "
          f"last started (task created) after {max(video_start, default=0):.1f} s")
    print(f"           most videos in flight {kling['max_in_flight']} (Kling tasks at once); tasks created "
          f"{kling['tasks_created']} (beyond one per video: {kling['tasks_created'] - args.videos}); refused 1303 "
          f"{kling['refused_parallel']}, 1302 {kling['refused_rate']}")
    print(f"           polls {kling['polls']} = {kling['polls'] / max(1, args.videos):.1f} per video; callbacks sent "
          f"{kling['callbacks_sent']}, failed {kling['callbacks_failed']}")
    print(f"           pool CPU {cpu:.1f} s = {cpu * 1000 / max(1, args.videos):.1f} ms per video (pictures' included); "
          + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in others_cpu.items()))
    ours = cpu + sum(others_cpu.values())
    print(f"           machine: {os.cpu_count()} cores {100 * machine_busy / machine_all:.0f}% busy during the run "
          f"({machine_busy:.0f} CPU-s; pool, web, periodic and stubs {ours:.0f} s; the rest PostgreSQL, Redis, "
          f"this process and whatever else runs here)")
    if picture_rows:
        print(f"pictures : {len(picture_rows)}/{args.pictures} in {picture_wall:.1f} s = {throughput:.2f}/s "
              f"vs W/L = {args.workers / args.latency:.2f}/s")
    else:
        print(f"pictures : none completed in {waited:.0f} s")
    if picture_queue:
        print(f"           while videos were in flight ({len(while_videos)}): submit-to-start p50 "
              f"{statistics.median(picture_queue):.1f} s p99 {percentile(picture_queue, 0.99):.1f} s; submit-to-done p50 "
              f"{statistics.median(picture_total):.1f} s p99 {percentile(picture_total, 0.99):.1f} s")
    print(f"           Gemini calls {gemini['calls']} (refused {gemini['refused_concurrency']} + {gemini['refused_rate']}), "
          f"most at once {gemini['max_concurrent']}")
    backlog = ", ".join(f"{key.replace('_', ' ')} {most} (at {when:.0f} s)"
                        for key in ("videos", "images", "videos_scheduled") for most, when in [sampler.most(key)])
    print(f"queues   : longest {backlog}")
    print("RSS      : " + "; ".join(f"{name} {now:.0f} MB (peak {peak:.0f})" for name, (now, peak) in memory.items()))
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
