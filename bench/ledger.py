"""Ledger throughput on PostgreSQL against pgbench's tpcb-like on the same server, same run.

8 processes do reserve -> charge cycles (two ledger transactions each) over 100 wallets, and
pgbench tpcb-like (-c 8 -j 2, scale 10) runs for the same time, in alternating slices (3 rounds
by default: the machine's load drifts, and slices make both sides share it); then 1 hot wallet. Prints transfers/s, ledger transactions/s, p50/p99 latency, drift after the run, and
    RESULT ledger ratio=<ledger tx/s on 100 wallets / pgbench tps> target=0.5

Usage: .venv/bin/python bench/ledger.py [--seconds 10] [--rounds 3] [--pg postgres://postgres@127.0.0.1:5432]
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import secrets
import random
import re
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

# DEBUG off refuses the development SECRET_KEY; any key will do for a benchmark (children inherit it).
os.environ.setdefault("SECRET_KEY", "bench-" + secrets.token_urlsafe(32))

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PROCESSES = 8
BENCH_DB = "genbot_bench_ledger"
PGBENCH_DB = "genbot_bench_pgbench"


def django_setup(db_url: str) -> None:
    os.environ["DATABASE_URL"] = db_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "genbot.settings")
    import django

    django.setup()


def psql(server: str, sql: str) -> None:
    subprocess.run(["psql", f"{server}/postgres", "-q", "-c", sql], check=True, capture_output=True)


def recreate(server: str, name: str) -> None:
    psql(server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    psql(server, f"CREATE DATABASE {name}")


def worker(db_url: str, customer_ids: list[int], seconds: float, ready, start, out: mp.Queue) -> None:
    django_setup(db_url)
    from billing import services
    from billing.models import Customer

    customers = list(Customer.objects.filter(pk__in=customer_ids))
    latencies: list[float] = []
    cycles = 0
    ready.put(os.getpid())
    start.wait()
    deadline = time.time() + seconds
    while time.time() < deadline:
        customer = random.choice(customers)
        t0 = time.perf_counter()
        reservation = services.reserve_balance(customer=customer, amount=500, idempotency_key=f"b:{uuid.uuid4().hex}")
        t1 = time.perf_counter()
        services.charge_reserved_balance(reservation=reservation, amount=300)
        t2 = time.perf_counter()
        latencies += [t1 - t0, t2 - t1]
        cycles += 1
    out.put((cycles, latencies))


def run_phase(db_url: str, customer_ids: list[int], seconds: float) -> dict:
    ctx = mp.get_context("spawn")
    out, ready, start = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=worker, args=(db_url, customer_ids, seconds, ready, start, out)) for _ in range(PROCESSES)]
    for p in procs:
        p.start()
    for _ in procs:  # every process has finished django.setup() before the clock starts
        ready.get()
    start.set()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    return {"cycles": sum(c for c, _ in results), "latencies": [x for _, lats in results for x in lats]}


def pgbench_init(server: str) -> str:
    recreate(server, PGBENCH_DB)
    url = f"{server}/{PGBENCH_DB}"
    subprocess.run(["pgbench", "-i", "-s", "10", "-q", url], check=True, capture_output=True)
    return url


def pgbench(url: str, seconds: float) -> float:
    done = subprocess.run(
        ["pgbench", "-c", str(PROCESSES), "-j", "2", "-T", str(max(1, round(seconds))), url],
        check=True, capture_output=True, text=True,
    )
    match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", done.stdout)
    return float(match.group(1))


def merged(phases: list[dict], seconds: float) -> dict:
    cycles = sum(p["cycles"] for p in phases)
    latencies = sorted(x for p in phases for x in p["latencies"])
    return {
        "cycles": cycles,
        # Each cycle is two ledger transactions writing two ledger rows (the pending transfer and its post).
        "tx_per_s": 2 * cycles / seconds,
        "transfers_per_s": 2 * cycles / seconds,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", 10)))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pg", default=os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432"))
    args = parser.parse_args()
    server = args.pg.rstrip("/")
    db_url = f"{server}/{BENCH_DB}"

    recreate(server, BENCH_DB)
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v", "0"], check=True,
                   env={**os.environ, "DATABASE_URL": db_url})
    django_setup(db_url)
    from billing import selectors, services

    wallets = []
    for i in range(100):
        customer = services.get_or_create_customer(telegram_id=9_000_000 + i)
        services.credit_balance(customer=customer, amount=10**9, idempotency_key=f"fund:{i}", source="bonus")
        wallets.append(customer.pk)
    from django.db import connections

    connections.close_all()

    print(f"ledger bench: {PROCESSES} processes, {args.seconds:.0f} s per phase, PostgreSQL at {server}")
    pgbench_url = pgbench_init(server)
    slice_seconds = args.seconds / args.rounds
    spread_slices, tps_slices = [], []
    for _ in range(args.rounds):
        spread_slices.append(run_phase(db_url, wallets, slice_seconds))
        tps_slices.append(pgbench(pgbench_url, slice_seconds))
    psql(server, f"DROP DATABASE IF EXISTS {PGBENCH_DB} WITH (FORCE)")
    spread = merged(spread_slices, args.rounds * slice_seconds)
    tps = statistics.fmean(tps_slices)
    hot = merged([run_phase(db_url, wallets[:1], args.seconds)], args.seconds)

    drift = selectors.find_drift()
    total = selectors.total_of_all_accounts()
    for name, r in (("100 wallets", spread), ("1 hot wallet", hot)):
        print(
            f"{name:>12}: {r['transfers_per_s']:8.0f} transfers/s  {r['tx_per_s']:8.0f} ledger tx/s  "
            f"p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms  ({r['cycles']} reserve->charge cycles)"
        )
    print(f"     pgbench: {tps:8.0f} tps (tpcb-like, -c {PROCESSES} -j 2, scale 10; slices: "
          f"{', '.join(f'{t:.0f}' for t in tps_slices)})")
    print(f"drift after run: {len(drift)} account(s); sum of all accounts: {total}")
    connections.close_all()
    psql(server, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    if drift or total:
        print("RESULT ledger ratio=0.00 target=0.5 (drift!)")
        sys.exit(1)
    print(f"RESULT ledger ratio={spread['tx_per_s'] / tps:.2f} target=0.5")


if __name__ == "__main__":
    main()
