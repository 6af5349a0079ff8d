from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from . import health, metrics

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
    path(settings.ADMIN_PATH, admin.site.urls),
    path("django-rq/", include("django_rq.urls")),
    path("", include("payments.urls")),
    path("", include("telegram_bot.urls")),
]
