from django.urls import path

from telegram_bot import views

urlpatterns = [
    path("telegram/webhook/", views.telegram_webhook, name="telegram-webhook"),
    path("chat/", views.chat_page, name="chat-page"),
]
