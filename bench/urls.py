"""The benchmarks' URL conf: the product's URLs, plus the baseline view ``bench/webhook.py``
measures the webhook against. Only ``bench.settings`` names it; the product never serves it."""
from django.http import HttpRequest, HttpResponse
from django.urls import include, path


def ping(request: HttpRequest) -> HttpResponse:
    """The benchmark's baseline: the cheapest view the same server can serve (full middleware)."""
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("bench/ping", ping, name="bench-ping"),
    path("", include("genbot.urls")),
]
