"""Staff views of jobs (read-mostly; cancel goes through ``cancel_job``) and the catalogue.

Staff edit the offers (what can be ordered, with which options) and their price lines; each
offer's page shows the effective price table (every order it takes, its price, the provider's
cost and the margin). Disabling an offer sends its new orders to its successor at once.

Money is shown in roubles, options in words. Result files are served to staff who may view the
job through ``result_view`` (inside the admin site), from Django's storage: results are never
public media, and ``bin/run`` serves no ``/media/``.
"""
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _

from billing.forms import MoneyField
from billing.money import format_amount
from genbot.errors import GenbotError

from . import catalog
from .models import Job, JobKind, Offer, OfferPrice
from .selectors import all_offers
from .services import cancel_job, retry_job


MODE_WORDS = {"std": _("standard"), "pro": _("professional")}


def aspect_words(ratio: str) -> str:
    """ "16:9" -> "16:9, landscape"; unreadable ratios are shown as they are."""
    try:
        width, height = (int(part) for part in ratio.split(":"))
    except (AttributeError, ValueError):
        return str(ratio)
    shape = _("landscape") if width > height else _("portrait") if width < height else _("square")
    return f"{ratio}, {shape}"


def describe_options(options: dict) -> str:
    """A job's options for a person: aspect ratio, duration and mode in words."""
    parts = []
    if options.get("aspect_ratio"):
        parts.append(_("aspect ratio %(ratio)s") % {"ratio": aspect_words(options["aspect_ratio"])})
    if options.get("duration"):
        parts.append(_("%(seconds)s seconds") % {"seconds": options["duration"]})
    if options.get("mode"):
        parts.append(_("%(mode)s mode") % {"mode": MODE_WORDS.get(options["mode"], options["mode"])})
    if options.get("image_size"):
        parts.append(_("size %(size)s") % {"size": options["image_size"]})
    if "sound" in options:
        parts.append(_("with sound") if options["sound"] else _("silent"))
    if options.get("negative_prompt"):
        parts.append(_("avoid: %(text)s") % {"text": options["negative_prompt"]})
    known = {"aspect_ratio", "duration", "mode", "image_size", "sound", "negative_prompt"}
    parts += [f"{key}: {value}" for key, value in sorted(options.items()) if key not in known]
    return "; ".join(str(part) for part in parts) or "—"


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "customer", "kind", "offer_key", "provider", "status", "progress", "estimate", "charged",
                    "created_at")
    list_filter = ("status", "kind", "offer_key", "provider", ("created_at", admin.DateFieldListFilter))
    search_fields = ("=id", "=provider_task_id", "prompt", "customer__telegram_id", "customer__username")
    list_select_related = ("customer",)
    date_hierarchy = "created_at"
    actions = ["cancel_selected", "retry_selected"]
    readonly_fields = [f.name for f in Job._meta.fields] + ["result_preview", "options_shown", "estimate", "charged"]
    fieldsets = (
        (None, {"fields": ("customer", "kind", "offer_key", "model_id", "provider", "prompt", "options_shown",
                           "input_file", "input_files", "input_mime", "end_file")}),
        (_("State"), {"fields": ("status", "progress", "attempts", "provider_task_id", "queue_position", "queue_eta",
                                 "next_check_at", "error_code", "error", "heartbeat_at",
                                  "created_at", "started_at", "completed_at")}),
        (_("Money"), {"fields": ("estimate", "charged", "provider_cost", "reservation")}),
        (_("Result"), {"fields": ("result_preview", "result_files", "result_mime", "results_deleted_at")}),
    )

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("options"))
    def options_shown(self, job: Job):
        return describe_options(job.options or {})

    @admin.display(description=_("estimate"), ordering="cost_estimate")
    def estimate(self, job: Job):
        return format_amount(job.cost_estimate)

    @admin.display(description=_("charged"), ordering="cost_actual")
    def charged(self, job: Job):
        return format_amount(job.cost_actual) if job.cost_actual is not None else "—"

    @admin.display(description=_("Result"))
    def result_preview(self, job: Job):
        if job.results_deleted_at:
            return _("Deleted after the retention period.")
        items = [
            {"url": reverse("admin:jobs_job_result", args=[job.pk, index]), "mime": job.result_mime, "name": name}
            for index, name in enumerate(job.result_files or [])
        ]
        return render_to_string("jobs/admin/result_preview.html", {"items": items})

    def get_urls(self):
        return [
            path("<int:pk>/result/<int:index>/", self.admin_site.admin_view(self.result_view), name="jobs_job_result"),
            *super().get_urls(),
        ]

    def result_view(self, request, pk: int, index: int):
        """One result file of a job, streamed from storage to staff who may view the job."""
        job = get_object_or_404(Job, pk=pk)
        if not self.has_view_permission(request, job):
            raise PermissionDenied
        names = job.result_files or []
        if job.results_deleted_at or index >= len(names):
            raise Http404
        try:
            stream = default_storage.open(names[index], "rb")
        except (FileNotFoundError, OSError) as exc:
            raise Http404 from exc
        return FileResponse(stream, content_type=job.result_mime or None)

    @admin.action(description=_("Cancel the selected jobs (releases their reservations)"), permissions=["cancel"])
    def cancel_selected(self, request, queryset):
        done = self._each(request, queryset, cancel_job, "cancelled by staff")
        if done:
            self.message_user(request, _("Cancelled %(count)s jobs.") % {"count": done}, messages.SUCCESS)

    @admin.action(description=_("Retry the selected failed jobs (a new job and reservation each)"), permissions=["retry"])
    def retry_selected(self, request, queryset):
        done = self._each(request, queryset.select_related("customer"), retry_job, "retried by staff")
        if done:
            self.message_user(request, _("Submitted %(count)s new jobs.") % {"count": done}, messages.SUCCESS)

    def _each(self, request, queryset, service, audit: str) -> int:
        """Run ``service(job=...)`` on each job; refusals are shown, successes audited."""
        done = 0
        for job in queryset:
            try:
                outcome = service(job=job)
            except GenbotError as exc:
                self.message_user(request, f"#{job.pk}: {exc}", messages.WARNING)
                continue
            done += 1
            self.log_change(request, job, audit if outcome.pk == job.pk else f"{audit} as job #{outcome.pk}")
        return done

    def has_cancel_permission(self, request):
        return request.user.has_perm("jobs.cancel_job")

    def has_retry_permission(self, request):
        return request.user.has_perm("jobs.retry_job")


# --- the catalogue ----------------------------------------------------------------------------


def _choices(values) -> list[tuple]:
    return [(value, value) for value in values]


class OfferForm(forms.ModelForm):
    """The option lists as boxes to tick (stored as JSON lists, in the catalogue's order)."""

    kinds = forms.MultipleChoiceField(choices=JobKind.choices, widget=forms.CheckboxSelectMultiple)
    aspect_ratios = forms.MultipleChoiceField(
        choices=_choices(sorted(catalog.IMAGE_ASPECT_RATIOS | catalog.VIDEO_ASPECT_RATIOS)),
        widget=forms.CheckboxSelectMultiple, required=False)
    image_sizes = forms.MultipleChoiceField(choices=_choices(catalog.IMAGE_SIZES), widget=forms.CheckboxSelectMultiple,
                                            required=False, help_text=_("None: the model has one size."))
    durations = forms.TypedMultipleChoiceField(choices=_choices(catalog.VIDEO_DURATIONS), coerce=int,
                                               widget=forms.CheckboxSelectMultiple, required=False)
    modes = forms.MultipleChoiceField(choices=[(mode, MODE_WORDS[mode]) for mode in catalog.VIDEO_MODES],
                                      widget=forms.CheckboxSelectMultiple, required=False)

    class Meta:
        model = Offer
        fields = ("key", "title", "provider", "model_id", "kinds", "aspect_ratios", "image_sizes", "durations", "modes",
                  "sound", "negative_prompt", "end_frame", "max_input_images", "enabled", "is_default", "successor",
                  "position")

    def clean(self):
        cleaned = super().clean()
        successor = cleaned.get("successor")
        if successor is not None and self.instance.pk and successor.pk == self.instance.pk:
            self.add_error("successor", _("An offer cannot be its own successor."))
        return cleaned


class OfferPriceForm(forms.ModelForm):
    amount = MoneyField(label=_("price, ₽"), help_text=_("For example 15 or 12,50"))
    cost = MoneyField(label=_("provider's cost, ₽"), required=False)

    class Meta:
        model = OfferPrice
        fields = ("kind", "mode", "duration", "image_size", "sound", "surcharge", "per_second", "amount", "cost")

    def clean_cost(self):
        return self.cleaned_data.get("cost") or 0


class OfferPriceInline(admin.TabularInline):
    model = OfferPrice
    form = OfferPriceForm
    extra = 1


@admin.register(Offer)
class OfferAdmin(admin.ModelAdmin):
    form = OfferForm
    inlines = [OfferPriceInline]
    list_display = ("key", "title", "provider", "model_id", "kinds_shown", "enabled", "is_default", "successor",
                    "position")
    list_editable = ("enabled", "position")
    list_filter = ("enabled", "provider")
    readonly_fields = ("price_table",)

    @admin.display(description=_("kinds"))
    def kinds_shown(self, offer: Offer) -> str:
        return ", ".join(offer.kinds or ())

    @admin.display(description=_("Effective prices"))
    def price_table(self, offer: Offer):
        view = next((item for item in all_offers() if item.key == offer.key), None)
        if view is None:
            return "—"
        rows = [
            {"kind": JobKind(row.kind).label, "options": describe_options(row.options), "price": format_amount(row.price),
             "cost": format_amount(row.cost), "margin": format_amount(row.price - row.cost)}
            for row in catalog.price_table(view)
        ]
        return render_to_string("jobs/admin/price_table.html", {"rows": rows})


@admin.register(OfferPrice)
class OfferPriceAdmin(admin.ModelAdmin):
    """Every offer's price lines in one list, typed and shown in roubles (stored in kopecks)."""

    form = OfferPriceForm
    list_display = ("offer", "kind", "mode", "duration", "image_size", "sound", "surcharge", "per_second", "amount",
                    "cost")
    list_editable = ("amount", "cost")
    list_filter = ("offer", "kind", "surcharge")
    list_select_related = ("offer",)

    def get_changelist_form(self, request, **kwargs):
        return super().get_changelist_form(request, form=OfferPriceForm, **kwargs)
