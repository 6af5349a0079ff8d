"""Support's customer page: money, payments and jobs of one customer in one place.

It extends billing's CustomerAdmin with the other apps' records; it lives in the project layer
because billing imports no other app.
"""
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

from billing.admin import CustomerAdmin, ReadOnlyAdminMixin, money_column
from billing.models import Customer
from billing.services import set_customer_blocked
from jobs.models import Job
from payments.models import Payment
from telegram_bot.sender import broadcast

from .forms import MessageForm

# A message action sends while the page waits; larger audiences go through `manage.py broadcast`.
MAX_DIRECT_MESSAGES = 100


class ReadOnlyInline(ReadOnlyAdminMixin, admin.TabularInline):
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True


class PaymentInline(ReadOnlyInline):
    model = Payment
    fields = ("created_at", "provider", "money", "status", "refunded")
    readonly_fields = fields
    ordering = ("-id",)
    verbose_name_plural = _("Payments")

    money = money_column("amount", _("amount"))
    refunded = money_column("refunded_amount", _("refunded"), dash_zero=True)


class JobInline(ReadOnlyInline):
    model = Job
    fields = ("created_at", "kind", "provider", "status", "progress", "estimate", "charged", "error")
    readonly_fields = fields
    ordering = ("-id",)
    verbose_name_plural = _("Jobs")

    estimate = money_column("cost_estimate", _("estimate"))
    charged = money_column("cost_actual", _("charged"))


class SupportCustomerAdmin(CustomerAdmin):
    inlines = [*CustomerAdmin.inlines, PaymentInline, JobInline]
    actions = [*CustomerAdmin.actions, "block", "unblock", "send_message"]

    @admin.action(description=_("Block the selected customers"), permissions=["change"])
    def block(self, request, queryset):
        self._set_blocked(request, queryset, blocked=True)

    @admin.action(description=_("Unblock the selected customers"), permissions=["change"])
    def unblock(self, request, queryset):
        self._set_blocked(request, queryset, blocked=False)

    def _set_blocked(self, request, queryset, *, blocked: bool) -> None:
        for customer in queryset:
            set_customer_blocked(customer=customer, blocked=blocked)
            self.log_change(request, customer, "blocked" if blocked else "unblocked")
        self.message_user(request, _("%(n)s customer(s) updated.") % {"n": queryset.count()}, messages.SUCCESS)

    @admin.action(description=_("Send a message to the selected customers"), permissions=["change"])
    def send_message(self, request, queryset):
        count = queryset.count()
        if count > MAX_DIRECT_MESSAGES:
            self.message_user(
                request,
                _("%(n)s customers selected: for more than %(max)s use `manage.py broadcast`.")
                % {"n": count, "max": MAX_DIRECT_MESSAGES},
                messages.WARNING,
            )
            return None
        form = MessageForm(request.POST if "text" in request.POST else None)
        if form.is_valid():
            result = broadcast(queryset.values_list("telegram_id", flat=True), form.cleaned_data["text"])
            for customer in queryset:
                self.log_change(request, customer, f"message sent by staff: {form.cleaned_data['text'][:200]}")
            self.message_user(
                request,
                _("Delivered %(sent)s, the bot is blocked by %(blocked)s, failed %(failed)s.")
                % {"sent": result.sent, "blocked": result.blocked, "failed": result.failed},
                messages.SUCCESS if not result.failed else messages.WARNING,
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": _("Message %(n)s customer(s)") % {"n": count},
            "customers": queryset,
            "form": form,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/billing/customer/send_message.html", context)


admin.site.unregister(Customer)
admin.site.register(Customer, SupportCustomerAdmin)
