from django.conf import settings
from django.contrib import admin
from django.contrib.auth.decorators import user_passes_test
from django.urls import include, path
from django_rq.urls import get_admin_urlpatterns, get_api_urlpatterns

from . import health, metrics


def superuser_required(view):
    """Superusers only: the RQ dashboard can empty queues and delete jobs (support staff cannot)."""
    return user_passes_test(lambda user: user.is_active and user.is_superuser, login_url=f"/{settings.ADMIN_PATH}login/")(view)


# django-rq's own views (they let any staff member in) behind the superuser check; its JSON stats
# keep their API-token authentication.
rq_dashboard = (get_api_urlpatterns() + get_admin_urlpatterns(view_wrapper=superuser_required), "django_rq")

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
    path(settings.ADMIN_PATH, admin.site.urls),
    path("django-rq/", include(rq_dashboard)),
    path("", include("payments.urls")),
    path("", include("jobs.urls")),
    path("", include("telegram_bot.urls")),
]
