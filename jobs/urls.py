from django.urls import path

from . import views

urlpatterns = [
    path("webhook/kling/<str:token>", views.kling_callback, name="kling-callback"),
]
