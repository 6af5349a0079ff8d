"""What the bot keeps: the durable outbox of outgoing messages, broadcasts, each chat's dialogue state."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Length
from django.db.models.lookups import LessThanOrEqual
from django.utils.translation import gettext_lazy as _

from genbot.choices import one_of


class OutboxStatus(models.TextChoices):
    # Each label is the name's (Django's default): "Pending", ...
    PENDING = "pending"
    SENDING = "sending"  # claimed by a delivery loop
    # Broadcast rows only: the request is about to go out (marked after the flood-limit wait).
    # A loop that dies leaves it so; it is then IN_DOUBT, never sent again.
    ON_WIRE = "on_wire", "On the wire"
    SENT = "sent"
    FAILED = "failed"
    IN_DOUBT = "in_doubt", "In doubt"  # a broadcast row that may or may not have reached the chat
    CANCELED = "canceled"  # a broadcast row its broadcast's cancel stopped before it went


# Telegram's limits: a message's text, a photo's caption.
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024


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
    # A broadcast's row: its text, picture and button are the broadcast's (``params`` holds none).
    broadcast = models.ForeignKey("Broadcast", null=True, blank=True, on_delete=models.PROTECT, related_name="rows")

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
            # A broadcast writes at most one row per chat, however often its audience is written.
            models.UniqueConstraint(
                fields=["broadcast", "chat_id"], condition=Q(broadcast__isnull=False), name="outbox_broadcast_once_per_chat"
            ),
            # Only broadcast rows go on the wire, become in doubt or are canceled.
            models.CheckConstraint(
                condition=Q(broadcast__isnull=False) | ~Q(status__in=["on_wire", "in_doubt", "canceled"]),
                name="outbox_broadcast_only_statuses",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.method} to {self.chat_id} ({self.status})"


class BroadcastStatus(models.TextChoices):
    """draft -> scheduled -> sending -> done; draft -> sending (sent now); scheduled | sending -> canceled."""

    DRAFT = "draft", _("draft")
    SCHEDULED = "scheduled", _("scheduled")
    SENDING = "sending", _("sending")
    DONE = "done", _("done")
    CANCELED = "canceled", _("canceled")


class AudienceLanguage(models.TextChoices):
    ANY = "", _("any language")
    RU = "ru", "Русский"
    EN = "en", "English"


class JoinedVia(models.TextChoices):
    ANY = "", _("any way")
    REFERRAL = "referral", _("a referral link")
    PROMO = "promo", _("a promo code")
    EITHER = "either", _("a referral link or a promo code")


class Broadcast(models.Model):
    """A message to many customers: its text (a picture, one link button), who gets it, and when.

    States: draft -> scheduled (``send_at``) -> sending -> done; a draft may go straight to
    sending; scheduled and sending may be canceled. Each change is a conditional UPDATE
    (``telegram_bot.broadcasts``). Sending writes the audience into the outbox (one row per
    chat, ``OutboxMessage.broadcast``) in batches from ``audience_cursor`` up to
    ``audience_through`` (the newest customer when it started); ``audience_size`` is set when
    the last batch is written. What was sent, failed, is in doubt ... is read from those rows.
    """

    text = models.TextField(_("text"), max_length=TEXT_LIMIT)
    picture = models.ImageField(_("picture"), upload_to="broadcasts/", blank=True, default="")
    button_text = models.CharField(_("button text"), max_length=64, blank=True, default="")
    button_url = models.URLField(_("button link"), max_length=500, blank=True, default="")
    # The audience (``promotions.audience.broadcast_audience``).
    language = models.CharField(_("language"), max_length=8, blank=True, default="", choices=AudienceLanguage.choices)
    paid_at_least_once = models.BooleanField(_("paid at least once"), default=False)
    active_days = models.PositiveIntegerField(_("active in the last N days"), null=True, blank=True)
    joined_via = models.CharField(_("joined via"), max_length=16, blank=True, default="", choices=JoinedVia.choices)
    include_blocked = models.BooleanField(
        _("include customers who blocked the bot"), default=False,
        help_text=_("Telegram refuses them (403) unless they unblocked the bot without writing since."),
    )
    status = models.CharField(_("status"), max_length=16, choices=BroadcastStatus.choices, default=BroadcastStatus.DRAFT)
    send_at = models.DateTimeField(_("send at"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    audience_through = models.BigIntegerField(null=True, blank=True, editable=False)
    audience_cursor = models.BigIntegerField(default=0, editable=False)
    audience_size = models.PositiveIntegerField(_("audience"), null=True, blank=True, editable=False)
    # Telegram's id of the picture once a chat got it: the other chats get it by id, not uploaded again.
    picture_file_id = models.CharField(max_length=255, blank=True, default="", editable=False)

    class Meta:
        ordering = ["-id"]
        verbose_name = _("broadcast")
        verbose_name_plural = _("broadcasts")
        permissions = [("send_broadcast", "Can send, schedule and cancel broadcasts")]
        constraints = [
            one_of("status", BroadcastStatus, name="broadcast_status_valid"),
            one_of("language", AudienceLanguage, name="broadcast_language_valid"),
            one_of("joined_via", JoinedVia, name="broadcast_joined_via_valid"),
            models.CheckConstraint(condition=~Q(text=""), name="broadcast_has_text"),
            models.CheckConstraint(
                condition=Q(Q(picture=""), LessThanOrEqual(Length("text"), TEXT_LIMIT))
                | Q(LessThanOrEqual(Length("text"), CAPTION_LIMIT)),
                name="broadcast_text_within_telegram_limit",
            ),
            models.CheckConstraint(
                condition=Q(button_text="", button_url="") | (~Q(button_text="") & Q(button_url__startswith="https://")),
                name="broadcast_button_text_and_https_link",
            ),
            models.CheckConstraint(condition=~Q(status="scheduled") | Q(send_at__isnull=False), name="broadcast_scheduled_has_time"),
            models.CheckConstraint(
                condition=Q(status__in=["draft", "scheduled"]) | Q(status="canceled", started_at__isnull=True)
                | Q(started_at__isnull=False, audience_through__isnull=False),
                name="broadcast_started_has_time_and_audience_bound",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["done", "canceled"]) | Q(finished_at__isnull=False), name="broadcast_finished_has_time"
            ),
            models.CheckConstraint(condition=~Q(status="done") | Q(audience_size__isnull=False), name="broadcast_done_has_audience"),
        ]

    def __str__(self) -> str:
        first_line = self.text.strip().splitlines()[0] if self.text.strip() else ""
        return f"#{self.pk} {first_line[:40]} ({self.status})"


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
