from django.conf import settings
from django.urls import path

from . import views

urlpatterns = [
    path("webhook/yookassa", views.yookassa_webhook, name="yookassa-webhook"),
]

if settings.PAYMENTS_BENCH_PING:
    urlpatterns.append(path("bench/ping", views.bench_ping, name="bench-ping"))
