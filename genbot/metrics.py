"""/metrics for Prometheus: HTTP requests and latency, plus business figures read at scrape time.

Request metrics are per process; with several gunicorn workers set PROMETHEUS_MULTIPROC_DIR
(an empty directory) and every worker's figures are merged. Business figures (jobs by status,
generation time by provider, payments, ledger totals, queue sizes, rate-limit refusals) come from
the database, Redis and the shared counters, so any web process reports the same numbers.
"""
from __future__ import annotations

import os
import time
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Sum
from django.http import HttpResponse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from . import counters

HTTP_REQUESTS = Counter("genbot_http_requests", "HTTP requests served", ["method", "status"])
HTTP_LATENCY = Histogram(
    "genbot_http_request_duration_seconds", "Time to serve an HTTP request", ["method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


class RequestMetricsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        HTTP_LATENCY.labels(request.method).observe(time.perf_counter() - started)
        HTTP_REQUESTS.labels(request.method, str(response.status_code)).inc()
        return response


class BusinessCollector:
    """Reads figures at scrape time; each family is skipped if its source is unavailable."""

    def collect(self):
        from billing.models import Account, AccountKind
        from jobs.models import Job, JobStatus
        from payments.models import Payment

        jobs = GaugeMetricFamily("genbot_jobs", "Jobs by status and kind", labels=["status", "kind"])
        for row in Job.objects.values("status", "kind").annotate(n=Count("id")).order_by():
            jobs.add_metric([row["status"], row["kind"]], row["n"])
        yield jobs

        since = timezone.now() - timedelta(hours=1)
        gen_sum = GaugeMetricFamily(
            "genbot_generation_seconds_sum_1h", "Generation time of jobs completed in the last hour", labels=["provider"]
        )
        gen_count = GaugeMetricFamily(
            "genbot_generation_count_1h", "Jobs completed in the last hour", labels=["provider"]
        )
        per_provider: dict[str, list[float]] = {}
        for provider, started, completed in Job.objects.filter(
            status=JobStatus.COMPLETED, completed_at__gte=since, started_at__isnull=False
        ).values_list("provider", "started_at", "completed_at"):
            per_provider.setdefault(provider, []).append((completed - started).total_seconds())
        for provider, durations in per_provider.items():
            gen_sum.add_metric([provider], sum(durations))
            gen_count.add_metric([provider], len(durations))
        yield gen_sum
        yield gen_count

        payments = GaugeMetricFamily("genbot_payments", "Payments by provider and status", labels=["provider", "status"])
        amounts = GaugeMetricFamily(
            "genbot_payments_amount_kopecks", "Payment amounts by provider and status", labels=["provider", "status"]
        )
        for row in Payment.objects.values("provider", "status").annotate(n=Count("id"), total=Sum("amount")).order_by():
            payments.add_metric([row["provider"], row["status"]], row["n"])
            amounts.add_metric([row["provider"], row["status"]], row["total"] or 0)
        yield payments
        yield amounts

        ledger = GaugeMetricFamily("genbot_ledger_kopecks", "Cached ledger figures", labels=["account", "figure"])
        wallets = Account.objects.filter(kind=AccountKind.WALLET).aggregate(b=Sum("balance"), h=Sum("held"))
        ledger.add_metric(["wallets", "balance"], wallets["b"] or 0)
        ledger.add_metric(["wallets", "held"], wallets["h"] or 0)
        for code, balance in Account.objects.filter(kind=AccountKind.SYSTEM).values_list("code", "balance"):
            ledger.add_metric([code, "balance"], balance)
        yield ledger

        try:
            from .health import check_redis_and_queues

            lengths = check_redis_and_queues()
        except Exception:  # noqa: BLE001 - Redis down: no queue figures this scrape
            lengths = {}
        queues = GaugeMetricFamily("genbot_queue_length", "Jobs waiting in each RQ queue", labels=["queue"])
        for name, length in lengths.items():
            queues.add_metric([name], length)
        yield queues

        events = GaugeMetricFamily("genbot_events", "Events counted by every process (bot, workers)", labels=["event"])
        for name, value in counters.read_all().items():
            events.add_metric([name], value)
        yield events


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        registry.register(HTTP_REQUESTS)
        registry.register(HTTP_LATENCY)
    registry.register(BusinessCollector())
    return registry


LOOPBACK = frozenset({"127.0.0.1", "::1"})
# Headers a reverse proxy adds: a request carrying one came from elsewhere, whatever REMOTE_ADDR says.
FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP", "HTTP_FORWARDED")


def from_this_machine(request) -> bool:
    return request.META.get("REMOTE_ADDR") in LOOPBACK and not any(h in request.META for h in FORWARDING_HEADERS)


@never_cache
def metrics(request):
    """With METRICS_TOKEN: only with that bearer token. Without: only to this machine (a local
    scraper, not through the proxy) unless DEBUG."""
    token = settings.METRICS_TOKEN
    if token and not constant_time_compare(request.headers.get("Authorization", ""), f"Bearer {token}"):
        return HttpResponse("metrics need the bearer token\n", status=401, content_type="text/plain")
    if not token and not settings.DEBUG and not from_this_machine(request):
        return HttpResponse("metrics answer only to this machine without METRICS_TOKEN\n", status=403,
                            content_type="text/plain")
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
