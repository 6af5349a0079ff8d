"""Liveness and readiness for load balancers and orchestrators."""
from __future__ import annotations

import logging

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

log = logging.getLogger(__name__)


@never_cache
@require_GET
def healthz(request):
    """The process is alive and serving: nothing else is touched."""
    return JsonResponse({"status": "ok"})


def check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


def check_redis_and_queues() -> dict[str, int]:
    """Queue lengths; raises when Redis does not answer within a second.

    Its own short-timeout clients, so a probe never waits long and never changes the timeouts
    of the connections that enqueue jobs.
    """
    import redis
    from rq import Queue

    from .redis_client import get_client

    lengths = {}
    clients: dict[str, redis.Redis] = {}
    for name, conf in settings.RQ_QUEUES.items():
        url = conf["URL"]
        if url not in clients:
            clients[url] = get_client(url, role="probe")
        lengths[name] = Queue(name, connection=clients[url]).count
    for client in clients.values():
        client.close()
    return lengths


@never_cache
@require_GET
def readyz(request):
    """Database, Redis and the queues reachable: 200; anything down: 503 with what and why."""
    checks: dict[str, object] = {}
    healthy = True
    for name, check in (("database", check_database), ("queues", check_redis_and_queues)):
        try:
            checks[name] = check()
        except Exception as exc:  # noqa: BLE001 - any failure means not ready; say which
            log.warning("readiness check %s failed: %s", name, exc)
            checks[name] = f"down: {exc.__class__.__name__}"
            healthy = False
    return JsonResponse({"status": "ok" if healthy else "unavailable", "checks": checks}, status=200 if healthy else 503)
