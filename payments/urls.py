from django.urls import path

from . import views

urlpatterns = [
    path("webhook/yookassa", views.yookassa_webhook, name="yookassa-webhook"),
]
