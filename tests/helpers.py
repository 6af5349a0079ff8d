"""Small helpers shared by the suite: customers with money, and real concurrency."""
from __future__ import annotations

import itertools
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from django.db import close_old_connections, connection, connections

from billing import services as billing
from billing.models import Customer

_telegram_ids = itertools.count(10_000_001)
# 5,000 ₽: the staff limits of the staff-money tests (the ``limits`` fixture).
RUB_5000 = 5_000_00


def make_customer(*, balance: int = 0, **profile) -> Customer:
    """A customer, funded with ``balance`` kopecks through the real credit service."""
    telegram_id = profile.pop("telegram_id", None) or next(_telegram_ids)
    customer = billing.get_or_create_customer(telegram_id=telegram_id, **profile)
    if balance:
        billing.credit_balance(
            customer=customer, amount=balance, idempotency_key=f"test-fund:{telegram_id}", source="bonus"
        )
    return customer


def run_concurrently(fn: Callable[[int], Any], n: int, *, timeout: float = 120) -> list[tuple[str, Any]]:
    """Run ``fn(i)`` in ``n`` real threads released at once, each on its own DB connection.

    Returns ``[("ok", result) | ("error", exception), ...]`` in thread order.
    """
    barrier = threading.Barrier(n)
    results: list[tuple[str, Any]] = [("missing", None)] * n

    def worker(i: int) -> None:
        try:
            barrier.wait()
            results[i] = ("ok", fn(i))
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            results[i] = ("error", exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "a worker thread hung"
    close_old_connections()
    return results


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def _configured_for_postgres() -> bool:
    from django.conf import settings

    return settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


# Rules that exist only on PostgreSQL (its trigger); the suite runs on both databases.
postgres_only = __import__("pytest").mark.skipif(
    not _configured_for_postgres(), reason="a PostgreSQL-only rule; bin/test also runs the suite on PostgreSQL"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def subprocess_env(**extra) -> dict:
    """The environment for a child process that must use this test run's database and Redis."""
    from django.conf import settings

    env = dict(os.environ)
    conf = connection.settings_dict
    if connection.vendor == "sqlite":
        env.pop("DATABASE_URL", None)
        env["DATABASE_PATH"] = str(conf["NAME"])
    else:
        user = conf.get("USER") or "postgres"
        password = f":{conf['PASSWORD']}" if conf.get("PASSWORD") else ""
        env["DATABASE_URL"] = f"postgres://{user}{password}@{conf.get('HOST') or '127.0.0.1'}:{conf.get('PORT') or 5432}/{conf['NAME']}"
    env["MEDIA_ROOT"] = settings.MEDIA_ROOT
    env["AI_PROVIDER"] = "fake"
    env["REDIS_URL"] = settings.RQ_QUEUES["default"]["URL"]
    env.update({k: str(v) for k, v in extra.items()})
    return env


def wait_until(predicate, *, timeout: float = 30, interval: float = 0.05, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {message}")


def decompression_bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A PNG of a few dozen bytes whose header declares ``width`` x ``height`` pixels."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


def set_price(*, kind: str, amount: int, mode: str = "", duration: int = 0, offer: str = "") -> None:
    """Staff set a price: a per-job base line for this kind (and mode, duration) on the offer
    (the kind's default when none is named), as the old per-kind staff prices did."""
    from jobs import selectors
    from jobs.models import Offer, OfferPrice

    key = offer or selectors.default_offer(kind).key
    OfferPrice.objects.update_or_create(
        offer=Offer.objects.get(key=key), surcharge=False, kind=kind, mode=mode, duration=duration, image_size="",
        sound="", defaults={"amount": amount, "per_second": False},
    )
