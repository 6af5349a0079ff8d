"""Staff views of jobs (read-mostly; cancel goes through ``cancel_job``) and editable prices."""
from django.contrib import admin, messages
from django.core.files.storage import default_storage
from django.template.loader import render_to_string
from django.utils.translation import gettext_lazy as _

from billing.exceptions import BillingError

from .exceptions import JobError
from .models import Job, Price
from .services import cancel_job, retry_job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "customer", "kind", "provider", "status", "progress", "cost_estimate", "cost_actual", "created_at")
    list_filter = ("status", "kind", "provider", ("created_at", admin.DateFieldListFilter))
    search_fields = ("=id", "prompt", "customer__telegram_id", "customer__username")
    list_select_related = ("customer",)
    date_hierarchy = "created_at"
    actions = ["cancel_selected", "retry_selected"]
    readonly_fields = [f.name for f in Job._meta.fields] + ["result_preview"]
    fieldsets = (
        (None, {"fields": ("customer", "kind", "provider", "prompt", "options", "input_file", "input_mime")}),
        (_("State"), {"fields": ("status", "progress", "attempts", "error_code", "error", "heartbeat_at",
                                  "created_at", "started_at", "completed_at")}),
        (_("Money"), {"fields": ("cost_estimate", "cost_actual", "reservation")}),
        (_("Result"), {"fields": ("result_preview", "result_files", "result_mime", "results_deleted_at")}),
    )

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("Result"))
    def result_preview(self, job: Job):
        if job.results_deleted_at:
            return _("Deleted after the retention period.")
        items = [{"url": default_storage.url(name), "mime": job.result_mime, "name": name} for name in job.result_files or []]
        return render_to_string("jobs/admin/result_preview.html", {"items": items})

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
            except (JobError, BillingError) as exc:
                self.message_user(request, f"#{job.pk}: {exc}", messages.WARNING)
                continue
            done += 1
            self.log_change(request, job, audit if outcome.pk == job.pk else f"{audit} as job #{outcome.pk}")
        return done

    def has_cancel_permission(self, request):
        return request.user.has_perm("jobs.cancel_job")

    def has_retry_permission(self, request):
        return request.user.has_perm("jobs.retry_job")


@admin.register(Price)
class PriceAdmin(admin.ModelAdmin):
    list_display = ("kind", "provider", "mode", "duration", "amount", "updated_at")
    list_editable = ("amount",)
    list_filter = ("kind", "provider")
