"""The broadcast page: staff write the message, choose the audience and see its size, send now
or at a time, watch the figures (the page reloads while it sends) and cancel. Each action calls
one service (``telegram_bot.broadcasts``); only staff with the broadcast permissions see them."""
from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from genbot.errors import GenbotError
from telegram_bot import broadcasts
from telegram_bot.models import Broadcast, BroadcastStatus

# Seconds between two reloads of a scheduled or sending broadcast's page.
LIVE_REFRESH = 5
FIGURE_LABELS = (
    ("queued", _("queued")), ("sent", _("sent")), ("failed", _("failed")), ("blocked", _("blocked the bot")),
    ("canceled", _("canceled, not sent")), ("in_doubt", _("in doubt (reached the chat at most once)")),
)


class BroadcastForm(forms.ModelForm):
    button_url = forms.URLField(label=_("button link"), required=False, max_length=500, assume_scheme="https")

    class Meta:
        model = Broadcast
        fields = ("text", "picture", "button_text", "button_url", "language", "paid_at_least_once", "active_days",
                  "joined_via", "include_blocked", "send_at")
        widgets = {"text": forms.Textarea(attrs={"rows": 8, "cols": 80})}

    def clean(self):
        cleaned = super().clean()
        candidate = Broadcast(**{name: cleaned.get(name) for name in (
            "text", "button_text", "button_url", "language", "joined_via", "active_days")})
        candidate.picture = cleaned.get("picture") or ""
        try:
            broadcasts.check_broadcast(candidate)
        except GenbotError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return cleaned


@admin.register(Broadcast)
class BroadcastAdmin(admin.ModelAdmin):
    form = BroadcastForm
    change_form_template = "admin/telegram_bot/broadcast/change_form.html"
    list_display = ("id", "short_text", "status", "send_at", "started_at", "audience_size", "figures_line", "created_by")
    list_filter = ("status",)
    search_fields = ("text",)
    list_select_related = ("created_by",)
    readonly_fields = ("status", "audience_preview", "figures_table", "created_by", "created_at", "started_at", "finished_at")
    fieldsets = (
        (_("Message"), {"fields": ("text", "picture", "button_text", "button_url")}),
        (_("Audience"), {"fields": ("language", "paid_at_least_once", "active_days", "joined_via", "include_blocked",
                                    "audience_preview")}),
        (_("Sending"), {"fields": ("send_at", "status", "figures_table", "created_by", "created_at", "started_at",
                                   "finished_at")}),
    )
    actions = ["send_now", "schedule", "cancel"]

    # --- who may do what ---------------------------------------------------------------------

    def has_send_permission(self, request) -> bool:
        return request.user.has_perm(broadcasts.SEND_PERMISSION)

    def has_change_permission(self, request, obj=None):
        # Only a draft's message and audience can change; the rest is history.
        return super().has_change_permission(request, obj) and (obj is None or obj.status == BroadcastStatus.DRAFT)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (obj is None or obj.status == BroadcastStatus.DRAFT)

    def delete_queryset(self, request, queryset):
        # Drafts only: a started broadcast's rows are the record of what was sent.
        queryset.filter(status=BroadcastStatus.DRAFT).delete()

    # --- the page ------------------------------------------------------------------------------

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # Not inside the admin's usual transaction: saving is the service's own durable one.
        return self._changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        broadcasts.save_draft(acting_user=request.user, broadcast=obj)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        live = obj is not None and obj.status in (BroadcastStatus.SCHEDULED, BroadcastStatus.SENDING)
        context["live_refresh"] = LIVE_REFRESH if live else 0
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.display(description=_("text"))
    def short_text(self, obj):
        return obj.text if len(obj.text) <= 60 else obj.text[:59] + "…"

    @admin.display(description=_("audience now"))
    def audience_preview(self, obj):
        if obj is None or obj.pk is None:
            return _("Save the draft to see how many customers it reaches.")
        if obj.audience_size is not None:
            return _("%(n)s customer(s) (written when it started)") % {"n": obj.audience_size}
        return _("%(n)s customer(s)") % {"n": broadcasts.audience_count(obj)}

    @admin.display(description=_("figures"))
    def figures_line(self, obj):
        if obj.status in (BroadcastStatus.DRAFT, BroadcastStatus.SCHEDULED) and obj.started_at is None:
            return "—"
        result = broadcasts.figures(obj)
        return _("sent %(sent)s of %(audience)s, blocked %(blocked)s, failed %(failed)s, in doubt %(in_doubt)s") % {
            "sent": result.sent, "audience": result.audience, "blocked": result.blocked, "failed": result.failed,
            "in_doubt": result.in_doubt,
        }

    @admin.display(description=_("figures"))
    def figures_table(self, obj):
        if obj is None or obj.pk is None or obj.started_at is None:
            return _("Not started.")
        result = broadcasts.figures(obj)
        rows = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", (
            (label, getattr(result, name)) for name, label in FIGURE_LABELS
        ))
        written = _("audience written") if result.complete else _("audience being written")
        return format_html('<table><tr><th>{}</th><td>{}</td></tr>{}</table>', written, result.audience, rows)

    # --- actions: one service each -------------------------------------------------------------

    @admin.action(description=_("Send the selected broadcasts now"), permissions=["send"])
    def send_now(self, request, queryset):
        self._each(request, queryset, "started", lambda b: broadcasts.start_broadcast(acting_user=request.user, broadcast=b),
                   _("Broadcast #%(id)s started: the delivery loop writes its audience and sends it."))

    @admin.action(description=_("Schedule the selected broadcasts at their send time"), permissions=["send"])
    def schedule(self, request, queryset):
        self._each(request, queryset, "scheduled", lambda b: broadcasts.schedule_broadcast(
            acting_user=request.user, broadcast=b, send_at=b.send_at),
                   _("Broadcast #%(id)s scheduled."))

    @admin.action(description=_("Cancel the selected broadcasts (what was sent stays sent)"), permissions=["send"])
    def cancel(self, request, queryset):
        self._each(request, queryset, "canceled", lambda b: broadcasts.cancel_broadcast(acting_user=request.user, broadcast=b),
                   _("Broadcast #%(id)s canceled: the messages not sent yet will not go."))

    def _each(self, request, queryset, what: str, service, done_message) -> None:
        for broadcast in queryset.order_by("pk"):
            try:
                service(broadcast)
            except GenbotError as exc:
                self.message_user(request, f"#{broadcast.pk}: {exc}", messages.ERROR)
                continue
            self.log_change(request, broadcast, what)
            self.message_user(request, done_message % {"id": broadcast.pk}, messages.SUCCESS)
