"""YooKassa webhook throughput under gunicorn on PostgreSQL, against a trivial view, same run.

1,000 top-ups are created through ``payments.services.create_topup`` (the real SDK against the
in-process YooKassa stub) and paid at the stub without notifying. Then 10 notifications per
payment (7 payment.succeeded, 2 payment.waiting_for_capture, 1 payment.canceled: the view acts
on what the API says, whatever the event), 10,000 in all, shuffled, are posted by 16 concurrent
client processes to ``gunicorn genbot.wsgi -c deploy/gunicorn.conf.py``: the server as deployed
(threaded workers, one process per core; ``--workers``/``--threads`` override it). The baseline is
``GET /bench/ping`` on the same server (a view returning "ok" through the whole middleware
stack; served only by the benchmarks' URL conf, ``bench/urls.py``, which the server runs with
``DJANGO_SETTINGS_MODULE=bench.settings``), 10,000 requests by the same 16 clients. The two
workloads run in alternating slices (5 rounds), so background load on a shared machine hits both.

Prints notifications/s, the baseline req/s, credits made (must be 1,000), money credited (must
equal the sum of the payments) and ``RESULT webhook ratio=<notifications/s / ping req/s> target=0.5``.

Usage: .venv/bin/python bench/webhook.py [--payments 1000] [--per-payment 10] [--clients 16]
       [--workers N] [--threads N] [--pg postgres://postgres@127.0.0.1:5432]
"""
from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import random
import runpy
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = "genbot_bench_webhook"
GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"
# The gunicorn installed beside the interpreter running this script (its virtualenv's bin/);
# not resolved, so a virtualenv's python symlink keeps pointing into the virtualenv.
GUNICORN = Path(sys.executable).parent / "gunicorn"
SHOP_ID, SECRET = "bench-shop", "bench-secret"
EVENTS = ["payment.succeeded"] * 7 + ["payment.waiting_for_capture"] * 2 + ["payment.canceled"]


def psql(server: str, sql: str) -> None:
    subprocess.run(["psql", f"{server}/postgres", "-q", "-c", sql], check=True, capture_output=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_env(db_url: str, api_url: str) -> dict:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=db_url, DJANGO_SETTINGS_MODULE="bench.settings", DEBUG="false",
        YOOKASSA_SHOP_ID=SHOP_ID, YOOKASSA_SECRET_KEY=SECRET, YOOKASSA_API_URL=api_url,
        YOOKASSA_ALLOWED_IPS="127.0.0.1", LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
    )
    # DEBUG off refuses the development SECRET_KEY; any key will do for a benchmark.
    env.setdefault("SECRET_KEY", "bench-webhook-" + secrets.token_urlsafe(32))
    return env


def client(port: int, requests_: list[tuple[str, str, bytes | None]], start_at: float, out: mp.Queue) -> None:
    """Send each (method, path, body) on a fresh connection."""
    statuses: Counter = Counter()
    while time.time() < start_at:
        time.sleep(0.0005)
    for method, path, body in requests_:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Content-Type": "application/json"} if body is not None else {}
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            statuses[response.status] += 1
        except OSError:
            statuses["error"] += 1
        finally:
            conn.close()
    out.put(statuses)


def run_phase(port: int, work: list[tuple[str, str, bytes | None]], clients: int) -> tuple[float, Counter]:
    """All of ``work`` split over ``clients`` processes released together; (seconds, statuses)."""
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    start_at = time.time() + 0.5
    procs = [ctx.Process(target=client, args=(port, work[i::clients], start_at, out)) for i in range(clients)]
    for p in procs:
        p.start()
    totals: Counter = Counter()
    for _ in procs:
        totals.update(out.get())
    end = time.time()
    for p in procs:
        p.join()
    return end - start_at, totals


def wait_until_up(port: int, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/bench/ping")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("gunicorn did not come up")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--payments", type=int, default=1000)
    parser.add_argument("--per-payment", type=int, default=10)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, help="processes (default: deploy/gunicorn.conf.py's)")
    parser.add_argument("--threads", type=int, help="threads per process (default: deploy/gunicorn.conf.py's)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating slices of ping and webhook load")
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    args = parser.parse_args()
    # Read by deploy/gunicorn.conf.py, in the server's environment (copied from ours below).
    if args.workers:
        os.environ["WEB_CONCURRENCY"] = str(args.workers)
    if args.threads:
        os.environ["WEB_THREADS"] = str(args.threads)
    conf = runpy.run_path(str(GUNICORN_CONF))
    server_config = f"{conf['worker_class']} workers, {conf['workers']} processes x {conf['threads']} threads"

    from standins.yookassa import YooKassaStub

    stub = YooKassaStub(shop_id=SHOP_ID, secret_key=SECRET).start()
    db_url = f"{args.pg}/{BENCH_DB}"
    env = app_env(db_url, stub.api_url)
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "SECRET_KEY", "YOOKASSA_SHOP_ID",
                                           "YOOKASSA_SECRET_KEY", "YOOKASSA_API_URL", "LOG_LEVEL")})
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    t0 = time.time()
    psql(args.pg, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    psql(args.pg, f"CREATE DATABASE {BENCH_DB}")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)

    import django

    django.setup()
    from django.db import connections
    from django.db.models import Sum

    from billing import selectors
    from billing.models import Transfer
    from billing.services import get_or_create_customer
    from payments import services
    from payments.models import Payment, PaymentStatus

    rng = random.Random(4)
    presets = [10_000, 30_000, 50_000, 100_000]
    amounts = [rng.choice(presets) + rng.randrange(0, 100) * 100 for _ in range(args.payments)]
    expected_total = sum(amounts)

    def create(i: int) -> str:
        try:
            customer = get_or_create_customer(telegram_id=900_000_000 + i)
            payment = services.create_topup(customer=customer, amount=amounts[i], provider="yookassa")
            stub.mark_succeeded(payment.provider_payment_id, notify=False)
            return payment.provider_payment_id
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=8) as pool:
        payment_ids = list(pool.map(create, range(args.payments)))
    setup_seconds = time.time() - t0

    notifications = [
        ("POST", "/webhook/yookassa", json.dumps(stub.notification(event, stub.payments[pid])).encode())
        for pid in payment_ids
        for event in (EVENTS * (args.per_payment // len(EVENTS) + 1))[: args.per_payment]
    ]
    rng.shuffle(notifications)
    pings = [("GET", "/bench/ping", None)] * len(notifications)

    port = free_port()
    server = subprocess.Popen(
        [str(GUNICORN), "genbot.wsgi", "-c", str(GUNICORN_CONF), "-b", f"127.0.0.1:{port}",
         "--log-level", "warning"],
        cwd=ROOT, env=env,
    )
    try:
        wait_until_up(port)
        run_phase(port, pings[: args.clients * 20], args.clients)  # warm every worker up
        # Alternate slices of the two workloads, so both see the same background load (this
        # machine is shared) and the server in the same state.
        ping_seconds = hook_seconds = 0.0
        ping_statuses, hook_statuses = Counter(), Counter()
        api_calls_before = stub.calls[("GET", "/v3/payments")]
        size = -(-len(notifications) // args.rounds)
        for start in range(0, len(notifications), size):
            seconds, statuses = run_phase(port, pings[start:start + size], args.clients)
            ping_seconds += seconds
            ping_statuses.update(statuses)
            seconds, statuses = run_phase(port, notifications[start:start + size], args.clients)
            hook_seconds += seconds
            hook_statuses.update(statuses)
        api_calls = stub.calls[("GET", "/v3/payments")] - api_calls_before
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
        stub.stop()

    credits = Transfer.objects.filter(idempotency_key__startswith="yookassa:")
    credits_made = credits.count()
    credited = credits.aggregate(total=Sum("amount"))["total"] or 0
    succeeded = Payment.objects.filter(status=PaymentStatus.SUCCEEDED).count()
    drift = selectors.find_drift()
    connections.close_all()

    ping_rate = len(pings) / ping_seconds
    hook_rate = len(notifications) / hook_seconds
    print(f"setup: {args.payments} payments created through the SDK and paid at the stub in {setup_seconds:.1f}s")
    print(f"load average before the run: {load_before}")
    print(f"server: gunicorn genbot.wsgi -c deploy/gunicorn.conf.py ({server_config}), PostgreSQL, DEBUG off; "
          f"{args.clients} client processes, a new connection per request; {os.cpu_count()} CPUs shared")
    print(f"baseline: GET /bench/ping (view returning 'ok', full middleware) {len(pings)} requests "
          f"in {ping_seconds:.2f}s = {ping_rate:.0f} req/s; statuses {dict(ping_statuses)}")
    print(f"webhook: {len(notifications)} notifications ({args.per_payment} per payment, shuffled) "
          f"in {hook_seconds:.2f}s = {hook_rate:.0f} notifications/s; statuses {dict(hook_statuses)}")
    print(f"API calls (GET /v3/payments) during the webhook phase: {api_calls}")
    print(f"payments succeeded: {succeeded} of {args.payments}; books drift: {len(drift)} accounts")
    print(f"credits made: {credits_made} (must equal {args.payments})")
    print(f"money credited: {credited} kopecks (must equal {expected_total})")
    ok = (credits_made == args.payments and credited == expected_total and not drift
          and hook_statuses.get(200, 0) == len(notifications))
    if not ok:
        print("FAILED: credits, money or statuses are wrong")
    print(f"RESULT webhook ratio={hook_rate / ping_rate:.2f} target=0.5")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
