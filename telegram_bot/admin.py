"""Read-only views of what the bot sends: the outbox (failed or stuck deliveries show here);
broadcasts have their page in ``telegram_bot.admin_broadcasts``."""
from django.contrib import admin

from telegram_bot import admin_broadcasts  # noqa: F401 - registers the broadcast page
from telegram_bot.models import Conversation, OutboxMessage


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    list_display = ("id", "chat_id", "method", "status", "attempts", "next_attempt_at", "last_error", "created_at", "sent_at")
    list_filter = ("status", "method")
    search_fields = ("chat_id", "topic")
    ordering = ("-id",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("chat_id", "state", "updated_at")
    search_fields = ("chat_id",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
