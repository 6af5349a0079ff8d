from django.conf import settings
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path(settings.ADMIN_PATH, admin.site.urls),
    path("django-rq/", include("django_rq.urls")),
    path("", include("payments.urls")),
    path("", include("telegram_bot.urls")),
]
