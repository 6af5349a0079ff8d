"""What the bot keeps: the durable outbox of outgoing messages and each chat's dialogue state."""
from __future__ import annotations

from django.db import models
from django.db.models import Q

from genbot.choices import one_of


class OutboxStatus(models.TextChoices):
    # Each label is the name's (Django's default): "Pending", ...
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class OutboxMessage(models.Model):
    """One Bot API call to make (a message, a media file, an edit), kept until Telegram took it.

    Rows are written in the same transaction as the change they announce (or right after it
    commits) by any process; the delivery loop claims them with a conditional UPDATE, sends them
    through the one sender (flood limits, 429s, retries) and records the result. A send that
    fails for a transient reason goes back to pending with a later ``next_attempt_at``, so a
    result is never lost. Per chat, rows go out in id order.
    """

    chat_id = models.BigIntegerField()
    method = models.CharField(max_length=32)
    params = models.JSONField(default=dict)
    # A Django storage name uploaded as the media field (sendPhoto/sendVideo/sendDocument).
    file_name = models.CharField(max_length=255, blank=True, default="")
    # For editMessageText: the message to edit is the one this row sent.
    edit_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="edits")
    # "job:<id>": finds the job's progress message.
    topic = models.CharField(max_length=64, blank=True, default="", db_index=True)
    # While a row with this key is pending, a newer one replaces its params (progress edits).
    coalesce_key = models.CharField(max_length=64, blank=True, default="")
    status = models.CharField(max_length=16, choices=OutboxStatus.choices, default=OutboxStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=40, blank=True, default="")
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    sent_message_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["status", "id"], name="outbox_status_id")]
        constraints = [
            one_of("status", OutboxStatus, name="outbox_status_valid"),
            models.CheckConstraint(
                condition=~Q(status=OutboxStatus.SENT) | Q(sent_at__isnull=False), name="outbox_sent_has_time"
            ),
            # One progress message per job, however the bot and a worker race to create it.
            models.UniqueConstraint(
                fields=["topic"],
                condition=Q(method="sendMessage") & ~Q(topic=""),
                name="outbox_one_message_per_topic",
            ),
            models.UniqueConstraint(
                fields=["coalesce_key"],
                condition=Q(status="pending") & ~Q(coalesce_key=""),
                name="outbox_one_pending_per_coalesce_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.method} to {self.chat_id} ({self.status})"


class DialogueState(models.TextChoices):
    """What the bot waits for in a chat (``Conversation.state``)."""

    IDLE = ""  # nothing: a text gets the hint
    PICTURE_PROMPT = "picture_prompt"  # the description of a picture
    EDIT_PHOTO = "edit_photo"  # a photo with a caption saying what to change
    VIDEO_OPTIONS = "video_options"  # the video's duration, aspect ratio and quality buttons
    VIDEO_PROMPT = "video_prompt"  # the video's description, or a photo with a caption
    TOPUP_AMOUNT = "topup_amount"  # a top-up amount typed in
    CONFIRM = "confirm"  # a press of the shown quote's button (the draft is in ``data``)
    PROMO_CODE = "promo_code"  # a promo code typed after /promo

    @classmethod
    def video(cls) -> tuple[DialogueState, ...]:
        """The states of a video dialogue: its options may change, a photo makes it from a photo."""
        return (cls.VIDEO_OPTIONS, cls.VIDEO_PROMPT)


class Conversation(models.Model):
    """Where a chat is in a dialogue (waiting for a prompt, a custom amount, ...) and its draft."""

    chat_id = models.BigIntegerField(unique=True)
    state = models.CharField(max_length=32, blank=True, default=DialogueState.IDLE, choices=DialogueState.choices)
    data = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"chat {self.chat_id}: {self.state or 'idle'}"


class SettingsGroup(models.TextChoices):
    """What remembered settings are for: pictures (and photo edits), videos (from a description or a photo)."""

    PICTURE = "picture"
    VIDEO = "video"


class OrderSettings(models.Model):
    """The model and options a customer last chose for a group of kinds: their next order's.

    ``model`` is a catalogue offer's key ("" = the kind's default offer); ``options`` what
    ``jobs.services.submit_job`` takes (aspect_ratio, image_size, duration, mode, sound). What
    the offer no longer takes is dropped when the order is quoted (``telegram_bot.offers``).
    """

    customer = models.ForeignKey("billing.Customer", on_delete=models.CASCADE, related_name="+")
    group = models.CharField(max_length=16, choices=SettingsGroup.choices)
    model = models.CharField(max_length=40, blank=True, default="")
    options = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "group"], name="order_settings_one_per_group"),
            one_of("group", SettingsGroup, name="order_settings_group_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.group}: {self.model or 'default'} {self.options}"


class AlbumPhoto(models.Model):
    """One photo of an album (``media_group_id``) waiting for the album's other photos.

    Telegram sends an album as one update per photo, within a moment; each is kept here and the
    album is quoted once, as one edit, when no photo came for a short while (``telegram_bot.albums``).
    """

    chat_id = models.BigIntegerField()
    media_group_id = models.CharField(max_length=64)
    message_id = models.BigIntegerField()
    file_id = models.CharField(max_length=255)
    caption = models.TextField(blank=True, default="")
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["message_id"]
        constraints = [
            models.UniqueConstraint(fields=["chat_id", "media_group_id", "message_id"], name="album_photo_once"),
        ]
        indexes = [models.Index(fields=["chat_id", "media_group_id"], name="album_photo_group")]

    def __str__(self) -> str:
        return f"album {self.media_group_id} photo {self.message_id}"
